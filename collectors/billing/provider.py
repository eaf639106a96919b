"""One billing-source interface, and the one pipeline around it, for every cloud's pull.

A cloud's bill reaches us in one of two ways, and each is one protocol here:

- **Export files in object storage** (AWS CUR 2.0/FOCUS in S3, Azure Cost Management exports in
  Blob Storage, Google Cloud billing files in Cloud Storage): an `ObjectStore` lists, reads and
  downloads objects by ETag; an `ExportLayout` says which billing period a key belongs to, which
  export it is part of and which of a period's files are current. `pull_exports` is the
  pipeline: a period whose current files all kept their ETag is skipped (no download); a new or
  restated period is downloaded whole, streamed through its format's reader and written as ONE
  spool batch, so its rows replace the period's earlier rows (the `scope` replace key, set by
  the format's reader); a bad file refuses its period only; several exports under one prefix
  are refused (they may carry the same dollars).
- **An API that answers for a window of days** (AWS Cost Explorer, the BigQuery billing
  export): a `WindowSource` fetches the rows of a `Window` with its request count. `plan_window`
  chooses the window (the trailing days, a month-to-date rebuild every `rebuild_days`, closed
  months' days still marked estimated), `pull_window` fetches, spools one batch (rows scoped per
  day: a re-pulled day replaces its earlier rows) and records the run.

Either way the pull state (`PullState`, kept by warehouse/billing_state.py) is updated only after
the batch is in the spool, and a spool batch is published atomically (stream.BillingBatch): a
crash costs at most a repeated download or request, never a lost or doubled dollar. Credentials
come only from each SDK's own chain; this module knows no SDK.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import polars as pl

from collectors.billing.stream import BillingBatch
from collectors.errors import InputError
from tables.files import make_dirs

log = logging.getLogger(__name__)


# What a pull reports ---------------------------------------------------------------------------
@dataclass
class PullLine:
    """One line of a pull's report: a window pulled or an export period looked at."""

    source: str  # cost_explorer | export | bigquery
    account: str
    period: str
    rows: int
    requests: int  # paid API requests (Cost Explorer, BigQuery queries); 0 for object reads
    status: str
    bad_input: bool = False

    @property
    def ce_requests(self) -> int:
        """The AWS name of `requests` (Cost Explorer's paid requests)."""
        return self.requests


@dataclass
class PullReport:
    lines: list[PullLine] = field(default_factory=list)
    batches: list[Path] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(line.requests for line in self.lines)

    @property
    def ce_requests(self) -> int:
        return self.requests

    @property
    def failed(self) -> bool:
        return any(line.status.startswith(("error", "refused")) for line in self.lines)

    @property
    def bad_input(self) -> bool:
        return any(line.bad_input for line in self.lines)


# The state a pull keeps (warehouse/billing_state.py) -------------------------------------------
class ExportState(Protocol):
    def export_objects(self, bucket: str, period: str) -> dict[str, str]: ...

    def record_export_period(
        self, bucket: str, period: str, objects: list[tuple[str, str, int]]
    ) -> None: ...


class WindowState(Protocol):
    def ce_days(self, account: str) -> dict[date, tuple[bool, datetime]]: ...

    def last_ce_run(self, account: str, *, rebuild: bool = False) -> datetime | None: ...

    def record_ce_run(
        self,
        account: str,
        *,
        start: date,
        end: date,
        days: dict[date, bool],
        resources_from: date | None,
        requests: int,
        rebuild: bool,
        rows: int,
        now: datetime | None = None,
    ) -> None: ...


class PullState(ExportState, WindowState, Protocol):
    """Everything a provider's pull remembers between runs."""


# Export files in object storage ----------------------------------------------------------------
@dataclass(frozen=True)
class StoredObject:
    """One object of a bucket or container, as listed."""

    key: str
    etag: str
    size: int
    last_modified: datetime


class ObjectStore(Protocol):
    """A cloud's object store, as an export pull uses it (S3, Azure Blob Storage, GCS)."""

    @property
    def location(self) -> str:
        """`s3://bucket`, `azure://account/container`, `gs://bucket`: the prefix of every URI."""
        ...

    @property
    def state_key(self) -> str:
        """What the pull state files the objects under (the AWS bucket name, else location)."""
        ...

    def list(self, prefix: str) -> list[StoredObject]:
        """Every object under `prefix`."""
        ...

    def read(self, key: str) -> bytes:
        """A small object's bytes (a manifest)."""
        ...

    def download(self, obj: StoredObject, local: Path) -> None:
        """Exactly the version listed (its ETag), streamed to `local`; raises when it changed."""
        ...


class ExportLayout(Protocol):
    """How a cloud lays its export files out, and how they are read."""

    section: str  # the configuration section that names the prefix (messages)

    def export_root(self, key: str) -> str | None:
        """The export a key belongs to (the part before its period folder), None: not data."""
        ...

    def period_of(self, key: str) -> str | None:
        """`YYYY-MM` of the billing period a key belongs to."""
        ...

    def current_files(
        self, store: ObjectStore, objects: list[StoredObject]
    ) -> tuple[list[StoredObject], str | None]:
        """A period's current data files, or ([], why) when they cannot be taken now."""
        ...

    def chunks(self, local: Path, uri: str, tag_key: str) -> Iterator[pl.DataFrame]:
        """The billing rows of one downloaded file, chunk by chunk; errors name `uri`."""
        ...


# The folder that names a billing period: AWS Data Exports' and GCS extracts'
# `BILLING_PERIOD=YYYY-MM`, a GCS extract's `invoice_month=YYYYMM`, and the date range of legacy
# CUR and Azure Cost Management exports, `YYYYMMDD-YYYYMMDD` (its first day is the 1st).
PERIOD_FOLDER = r"(?:(?:data|metadata)/)?BILLING_PERIOD=\d{4}-\d{2}|invoice_month=\d{6}|\d{8}-\d{8}"
_ROOT_RE = re.compile(rf"^(.*?)/?(?:{PERIOD_FOLDER})(?:/|$)")
_PERIOD_RES = (
    re.compile(r"BILLING_PERIOD=(\d{4})-(\d{2})(?:/|$)"),
    re.compile(r"invoice_month=(\d{4})(\d{2})(?:/|$)"),
    re.compile(r"(?:^|/)(\d{4})(\d{2})01-\d{8}(?:/|$)"),
)
DATA_SUFFIXES = (".parquet", ".csv.gz", ".csv", ".gz")


def period_of(key: str) -> str | None:
    """`YYYY-MM` of the billing period a key belongs to, from its period folder."""
    for rx in _PERIOD_RES:
        m = rx.search(key)
        if m:
            return "-".join(m.groups())
    return None


def export_root(key: str) -> str | None:
    """The export a key belongs to: the part before its billing-period folder."""
    m = _ROOT_RE.match(key)
    return m.group(1) if m else None


def is_data_file(key: str) -> bool:
    name = key.rsplit("/", 1)[-1].lower()
    return name.endswith(DATA_SUFFIXES) and not name.endswith("manifest.json")


def current_files(
    objects: list[StoredObject], listed: set[str] | None
) -> tuple[list[StoredObject], str | None]:
    """A period's current data files: the ones its manifest lists (`listed`), else the newest
    folder's; ([], why) when the delivery is incomplete or there are none."""
    data = [o for o in objects if is_data_file(o.key)]
    if listed is not None:
        chosen = [o for o in data if o.key in listed]
        if len(chosen) < len(listed):
            return [], f"delivery incomplete: the manifest lists {len(listed)} file(s), " + (
                f"{len(chosen)} present"
            )
        return sorted(chosen, key=lambda o: o.key), None
    folders: dict[str, list[StoredObject]] = {}
    for o in data:
        folders.setdefault(o.key.rsplit("/", 1)[0], []).append(o)
    if not folders:
        if any(o.key.lower().endswith(".zip") for o in objects):
            return [], "ZIP files are not read: set the export's compression to GZIP or Parquet"
        return [], "no data files"
    newest = max(folders, key=lambda f: (max(o.last_modified for o in folders[f]), f))
    return sorted(folders[newest], key=lambda o: o.key), None


@dataclass
class PeriodResult:
    period: str
    files: int
    rows: int
    status: str
    bad_input: bool = False
    batch: Path | None = None


def export_periods(
    store: ObjectStore, layout: ExportLayout, objects: list[StoredObject]
) -> Iterator[tuple[str, list[StoredObject], str | None]]:
    """(period, current files, why not) for each billing period found, oldest first."""
    by_period: dict[str, list[StoredObject]] = {}
    for o in objects:
        p = layout.period_of(o.key)
        if p:
            by_period.setdefault(p, []).append(o)
    for period in sorted(by_period):
        files, why = layout.current_files(store, by_period[period])
        yield period, files, why


def pull_exports(
    store: ObjectStore,
    layout: ExportLayout,
    prefix: str,
    state: ExportState,
    spool_dir: Path,
    work_dir: Path,
    *,
    batch_name: str,
    tag_key: str = "workload",
) -> list[PeriodResult]:
    """Take every new or changed billing period under `prefix` (see the module docstring)."""
    objects = store.list(prefix)
    roots = sorted({r for o in objects if (r := layout.export_root(o.key)) is not None})
    if len(roots) > 1:
        names = ", ".join(f"{r}/" for r in roots)
        refusal = (
            f"refused: {store.location}/{prefix} holds several exports ({names}); they may carry "
            f"the same dollars: set [{layout.section}] export_prefix to one of them"
        )
        return [PeriodResult("", 0, 0, refusal, bad_input=True)]
    results: list[PeriodResult] = []
    for period, files, why in export_periods(store, layout, objects):
        if why:
            results.append(PeriodResult(period, 0, 0, f"skipped: {why}"))
            continue
        seen = state.export_objects(store.state_key, period)
        if seen == {o.key: o.etag for o in files}:
            results.append(PeriodResult(period, len(files), 0, "unchanged"))
            continue
        results.append(
            _take_period(
                store, layout, period, files, state, spool_dir, work_dir, batch_name, tag_key
            )
        )
    return results


def _local_name(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "object"


def _take_period(
    store: ObjectStore,
    layout: ExportLayout,
    period: str,
    files: list[StoredObject],
    state: ExportState,
    spool_dir: Path,
    work_dir: Path,
    batch_name: str,
    tag_key: str,
) -> PeriodResult:
    """One period's current files, downloaded and read into one batch (all or nothing)."""
    make_dirs(work_dir)
    batch = BillingBatch(
        spool_dir,
        batch_name,
        metadata={"source": store.location, "billing_period": period, "files": str(len(files))},
    )
    try:
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="export-") as tmp:
            for obj in files:
                local = Path(tmp) / _local_name(obj.key)
                store.download(obj, local)
                for chunk in layout.chunks(local, f"{store.location}/{obj.key}", tag_key):
                    batch.add(chunk)
                local.unlink()
        path = batch.publish()
    except InputError as exc:
        batch.discard()
        log.error("billing period %s refused: %s", period, exc)
        return PeriodResult(period, len(files), 0, f"refused: {exc}", bad_input=True)
    except BaseException:
        batch.discard()
        raise
    state.record_export_period(store.state_key, period, [(o.key, o.etag, o.size) for o in files])
    return PeriodResult(period, len(files), batch.rows, "taken", batch=path)


def export_lines(
    results: list[PeriodResult], location: str, report: PullReport, source: str = "export"
) -> None:
    """The periods' results as report lines (and their batches)."""
    for r in results:
        report.lines.append(PullLine(source, location, r.period, r.rows, 0, r.status, r.bad_input))
        if r.batch:
            report.batches.append(r.batch)


# An API answering for a window of days ---------------------------------------------------------
@dataclass(frozen=True)
class Window:
    """Days [start, end) to pull; days >= `resources_from` with resource ids (None: none)."""

    start: date
    end: date
    resources_from: date | None = None
    rebuild: bool = False
    reasons: tuple[str, ...] = ()


@dataclass
class WindowPull:
    """One window's pull: its rows, the days it covered with their Estimated flag, its paid
    requests."""

    frame: pl.DataFrame
    days: dict[date, bool] = field(default_factory=dict)
    requests: int = 0


class WindowSource(Protocol):
    """An API that answers for a window of days (one account, one table)."""

    @property
    def name(self) -> str:
        """What the spool batch and its metadata call the source (`aws_ce`, `gcp_bigquery`)."""
        ...

    @property
    def key(self) -> str:
        """What the pull state files its days and runs under (an account, a table)."""
        ...

    def fetch(self, window: Window) -> WindowPull:
        """The rows of the window's days, each day's rows scoped to that day."""
        ...


def month_start(d: date) -> date:
    return d.replace(day=1)


def plan_window(
    today: date,
    *,
    trailing_days: int = 3,
    rebuild_days: int = 7,
    with_resources: bool = False,
    resource_days: int = 14,
    days_pulled: dict[date, tuple[bool, datetime]] | None = None,
    last_rebuild: datetime | None = None,
    now: datetime | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Window:
    """Which days one pull asks for: today and the `trailing_days` before it (providers restate
    recent days), widened to the month's start once every `rebuild_days` (in a month's first
    days the trailing window already holds it) and back to the oldest day of a closed month
    that was still estimated when pulled; `since`/`until` (end-exclusive) override it."""
    now = now or datetime.now(UTC)
    days_pulled = days_pulled or {}
    end = until or today + timedelta(days=1)
    resource_start = today - timedelta(days=resource_days - 1)
    reasons: tuple[str, ...]
    if since is not None:
        start, reasons, rebuild = since, ("requested",), False
    else:
        start = today - timedelta(days=trailing_days)
        reasons = (f"trailing {trailing_days} days",)
        rebuild = last_rebuild is None or now - last_rebuild >= timedelta(days=rebuild_days)
        if rebuild:
            first = month_start(today)
            if with_resources and days_pulled:
                # Days past the resource window keep their resource ids until their month closes.
                first = max(first, resource_start)
            if first < start:
                start = first
                reasons += ("month-to-date rebuild",)
            else:  # early in a month the trailing window already holds the month so far
                reasons = (f"trailing {trailing_days} days (the whole month to date)",)
        stale = _stale_estimated(days_pulled, today, now)
        if stale:
            start = min(start, min(stale))
            reasons += (f"{len(stale)} estimated day(s) of a closed month",)
    resources_from = None
    if with_resources:
        first_res = max(start, resource_start)
        resources_from = first_res if first_res < end else None
    return Window(start, end, resources_from, rebuild, reasons)


def _stale_estimated(
    days_pulled: dict[date, tuple[bool, datetime]], today: date, now: datetime
) -> list[date]:
    """Days of a closed month still estimated when pulled, at least 20 hours ago."""
    return [
        d
        for d, (estimated, pulled_at) in days_pulled.items()
        if estimated and d < month_start(today) and now - pulled_at >= timedelta(hours=20)
    ]


@dataclass(frozen=True)
class WindowPlan:
    """How a window source's days are chosen (the provider's configuration)."""

    trailing_days: int = 3
    rebuild_days: int = 7
    with_resources: bool = False
    resource_days: int = 14


def pull_window(
    source: WindowSource,
    state: WindowState,
    spool_dir: Path,
    plan: WindowPlan,
    *,
    now: datetime,
    since: date | None = None,
    until: date | None = None,
    metadata: dict[str, str] | None = None,
    on_batch: Callable[[Path], None] | None = None,
) -> tuple[Window, WindowPull]:
    """Plan the window from the state, fetch it, spool it as one batch, record the run."""
    window = plan_window(
        now.date(),
        trailing_days=plan.trailing_days,
        rebuild_days=plan.rebuild_days,
        with_resources=plan.with_resources,
        resource_days=plan.resource_days,
        days_pulled=state.ce_days(source.key),
        last_rebuild=state.last_ce_run(source.key, rebuild=True),
        now=now,
        since=since,
        until=until,
    )
    pull = source.fetch(window)
    with BillingBatch(
        spool_dir,
        f"{source.name.replace('_', '-')}-{source.key}",
        metadata={"window": f"{window.start}/{window.end}", **(metadata or {})},
        now=now,
    ) as batch:
        batch.add(pull.frame)
    if batch.published and on_batch is not None:
        on_batch(batch.published)
    state.record_ce_run(
        source.key,
        start=window.start,
        end=window.end,
        days=pull.days,
        resources_from=window.resources_from,
        requests=pull.requests,
        rebuild=window.rebuild,
        rows=pull.frame.height,
        now=now,
    )
    return window, pull


def window_period(window: Window) -> str:
    """The window's days as a report shows them (the last day, not the exclusive end)."""
    last_day = window.end - timedelta(days=1)
    return f"{window.start}..{last_day}" + (
        f" (resources from {window.resources_from})" if window.resources_from else ""
    )


def all_days(window: Window, days: dict[date, bool]) -> dict[date, bool]:
    """`days` with every day of the window (a day an answer did not list was still pulled)."""
    out = dict(days)
    d = window.start
    while d < window.end:
        out.setdefault(d, False)
        d += timedelta(days=1)
    return out
