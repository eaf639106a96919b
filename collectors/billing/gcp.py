"""The Google Cloud billing pull: billing export files in Cloud Storage and, where configured,
the BigQuery billing export, into the spool.

Cloud Billing exports to BigQuery only; files come from extracting that table (or Google's FOCUS
view of it) a month at a time into a bucket, e.g. a scheduled query
`EXPORT DATA OPTIONS (uri='gs://BUCKET/gpuledger/focus/invoice_month=202611/*.parquet',
format='PARQUET', overwrite=true) AS SELECT … WHERE invoice.month = '202611'` (docs/gcp.md).
So the layout is `<prefix>/<export>/invoice_month=YYYYMM/…` (or `BILLING_PERIOD=YYYY-MM`); all
data files of a month's folder are its current files (the export overwrites them), read as FOCUS
(collectors/billing/focus.py) or as the detailed usage cost export
(collectors/billing/gcp_billing.py, Parquet). The pipeline is the interface's
(collectors/billing/provider.py `pull_exports`): an unchanged month is not downloaded again, a
restated one replaces its rows.

The BigQuery path is a `WindowSource`: one query per pull over the planned window of usage days
(the trailing days, a month-to-date rebuild; Google restates recent days), summed per day, rows
scoped per day. Credentials: google-auth's application default credentials (the
GOOGLE_APPLICATION_CREDENTIALS file, workload identity, the VM's service account); the storage
emulator through STORAGE_EMULATOR_HOST in tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from collectors.billing import focus, gcp_billing
from collectors.billing import formats as billing_formats
from collectors.billing.provider import (
    ObjectStore,
    PullLine,
    PullReport,
    StoredObject,
    Window,
    WindowPlan,
    WindowPull,
    all_days,
    current_files,
    export_lines,
    export_root,
    period_of,
    pull_exports,
    pull_window,
    window_period,
)
from collectors.billing.stream import CurrencyGuard, TableReader
from collectors.errors import InputError
from tables.records import empty

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GcpPullOptions:
    """What to pull (built from the [gcp] configuration by the CLI)."""

    project: str = ""
    bucket: str = ""
    export_prefix: str = ""
    bigquery_table: str = ""  # project.dataset.table of the detailed usage cost export
    tag_key: str = "workload"


class GcsStore:
    """A Cloud Storage bucket as the export pull's `ObjectStore` (google-cloud-storage)."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket
        self.generations: dict[str, int] = {}

    @property
    def location(self) -> str:
        return f"gs://{self.bucket}"

    @property
    def state_key(self) -> str:
        return self.location

    def list(self, prefix: str) -> list[StoredObject]:
        out = []
        for b in self.client.list_blobs(self.bucket, prefix=prefix or None):
            self.generations[b.name] = b.generation
            out.append(StoredObject(b.name, str(b.etag or b.generation), int(b.size), b.updated))
        return out

    def read(self, key: str) -> bytes:
        data: bytes = self.client.bucket(self.bucket).blob(key).download_as_bytes()
        return data

    def download(self, obj: StoredObject, local: Path) -> None:
        """Exactly the generation listed (a newer one fails the precondition)."""
        blob = self.client.bucket(self.bucket).blob(obj.key)
        blob.download_to_filename(str(local), if_generation_match=self.generations.get(obj.key))


class GcpLayout:
    """Month folders of extracted billing files, read as FOCUS or the detailed export."""

    section = "gcp"

    def export_root(self, key: str) -> str | None:
        return export_root(key)

    def period_of(self, key: str) -> str | None:
        return period_of(key)

    def current_files(
        self, store: ObjectStore, objects: list[StoredObject]
    ) -> tuple[list[StoredObject], str | None]:
        return current_files(objects, None)

    def chunks(self, local: Path, uri: str, tag_key: str) -> Iterator[pl.DataFrame]:
        return export_chunks(local, uri, tag_key)


def export_chunks(local: Path, uri: str, tag_key: str) -> Iterator[pl.DataFrame]:
    """One file's rows, FOCUS or the detailed export by its columns; errors name `uri`."""
    try:
        reader = TableReader(local)
        if billing_formats.identify(reader.columns) == "focus":
            yield from focus.read_focus_chunks(local, tag_key=tag_key, reader=reader)
        else:
            yield from gcp_billing.read_chunks(local, tag_key=tag_key, reader=reader)
    except InputError as exc:
        text = str(exc)
        rest = text[len(str(local)) + 2 :] if text.startswith(str(local)) else text
        out = InputError(uri, rest)
        out.row, out.column = exc.row, exc.column
        raise out from None


# BigQuery ---------------------------------------------------------------------------------------
BQ_SQL = """
SELECT billing_account_id,
       service.description AS service_description, sku.id AS sku_id,
       TIMESTAMP_TRUNC(usage_start_time, DAY) AS usage_start_time,
       TIMESTAMP_ADD(TIMESTAMP_TRUNC(usage_start_time, DAY), INTERVAL 1 DAY) AS usage_end_time,
       location.region AS region, resource.name AS resource_name,
       resource.global_name AS resource_global_name,
       SUM(cost) AS cost,
       SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) c), 0)) AS credits,
       SUM(cost_at_list) AS cost_at_list, currency,
       usage.pricing_unit AS pricing_unit,
       SUM(usage.amount_in_pricing_units) AS pricing_quantity,
       invoice.month AS invoice_month, cost_type,
       (SELECT l.value FROM UNNEST(labels) l WHERE l.key = @tag_key LIMIT 1) AS workload
FROM `{table}`
WHERE _PARTITIONTIME >= TIMESTAMP(@start)
  AND usage_start_time >= TIMESTAMP(@start) AND usage_start_time < TIMESTAMP(@end)
GROUP BY billing_account_id, service_description, sku_id, usage_start_time, usage_end_time,
         region, resource_name, resource_global_name, currency, pricing_unit, invoice_month,
         cost_type, workload
"""


@dataclass
class BigQuerySource:
    """The detailed usage cost export table as the interface's `WindowSource`: one query per
    window (rows of a usage day land in partitions of that day or later, so the partition
    filter never loses one and keeps the bytes scanned to the window)."""

    client: Any  # google.cloud.bigquery.Client
    table: str
    tag_key: str = "workload"
    name: str = "gcp_bigquery"

    @property
    def key(self) -> str:
        return f"bq:{self.table}"  # the ':' keeps it apart from AWS accounts in the state

    def fetch(self, window: Window) -> WindowPull:
        from google.cloud import bigquery

        params = [
            bigquery.ScalarQueryParameter("start", "DATE", window.start),
            bigquery.ScalarQueryParameter("end", "DATE", window.end),
            bigquery.ScalarQueryParameter("tag_key", "STRING", self.tag_key),
        ]
        job = self.client.query(
            BQ_SQL.format(table=self.table),
            job_config=bigquery.QueryJobConfig(query_parameters=params),
        )
        arrow = job.result().to_arrow()
        flat = pl.from_arrow(arrow)
        assert isinstance(flat, pl.DataFrame)
        frame = (
            gcp_billing.normalize_gcp(
                f"bigquery:{self.table}", flat, 1, CurrencyGuard(), scope="day"
            )
            if flat.height
            else empty("billing_items")
        )
        days: dict[date, bool] = {}
        return WindowPull(frame, all_days(window, days), requests=1)


def storage_client(opts: GcpPullOptions) -> Any:
    """A Cloud Storage client on application default credentials (anonymous against the
    emulator that STORAGE_EMULATOR_HOST names)."""
    import os

    import google.cloud.storage as storage  # type: ignore[import-untyped]  # no py.typed

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=opts.project or "emulator", credentials=AnonymousCredentials()
        )
    return storage.Client(project=opts.project or None)


def bigquery_client(opts: GcpPullOptions) -> Any:
    from google.cloud import bigquery

    return bigquery.Client(project=opts.project or None)


def describe_error(exc: Exception) -> str:
    """A Google API error in words, with the role to grant where Google denied access."""
    code = getattr(exc, "code", "")
    message = str(getattr(exc, "message", "") or exc).splitlines()[0][:300]
    if str(code) == "403" or type(exc).__name__ == "Forbidden":
        return f"access denied ({message}): grant the role named in docs/gcp.md"
    return f"{type(exc).__name__}: {message}"


def pull_gcp_files(
    opts: GcpPullOptions, state: Any, spool_dir: Path, work_dir: Path, *, client: Any = None
) -> PullReport:
    """Take every new or restated month of the files under [gcp] export_prefix."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    report = PullReport()
    store = GcsStore(client or storage_client(opts), opts.bucket)
    try:
        results = pull_exports(
            store,
            GcpLayout(),
            opts.export_prefix,
            state,
            spool_dir,
            work_dir,
            batch_name=f"gcp-export-{opts.bucket}",
            tag_key=opts.tag_key,
        )
    except (GoogleAPIError, GoogleAuthError) as exc:
        report.lines.append(PullLine("export", "", "", 0, 0, f"error: {describe_error(exc)}"))
        return report
    export_lines(results, store.location, report)
    return report


def pull_gcp_bigquery(
    opts: GcpPullOptions,
    state: Any,
    spool_dir: Path,
    plan: WindowPlan,
    *,
    now: datetime,
    since: date | None = None,
    until: date | None = None,
    client: Any = None,
) -> PullReport:
    """One query over the planned window of the BigQuery export (the interface's pull_window)."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    report = PullReport()
    source = BigQuerySource(client or bigquery_client(opts), opts.bigquery_table, opts.tag_key)
    try:
        window, pull = pull_window(
            source,
            state,
            spool_dir,
            plan,
            now=now,
            since=since,
            until=until,
            metadata={"source": "gcp_bigquery", "table": opts.bigquery_table},
            on_batch=report.batches.append,
        )
    except (GoogleAPIError, GoogleAuthError) as exc:
        line = PullLine("bigquery", opts.bigquery_table, "", 0, 1, f"error: {describe_error(exc)}")
        report.lines.append(line)
        return report
    status = "pulled: " + ", ".join(window.reasons)
    report.lines.append(
        PullLine(
            "bigquery", opts.bigquery_table, window_period(window), pull.frame.height, 1, status
        )
    )
    return report
