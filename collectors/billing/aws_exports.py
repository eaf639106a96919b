"""CUR 2.0, legacy CUR and FOCUS exports that AWS delivers to S3.

Layouts (the export prefix names one export; several under it are refused, since a CUR and a FOCUS
export of the same accounts would count every dollar twice):
- Data Exports (CUR 2.0, FOCUS 1.x): `<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/…` with
  `<prefix>/<export>/metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json` (`dataFiles`);
- legacy CUR: `<prefix>/<report>/YYYYMMDD-YYYYMMDD/[<assembly id>/]<report>-N.csv.gz` with
  `<report>-Manifest.json` (`reportKeys`).

Each billing period is taken as a whole: its current files are the ones its newest manifest lists
(else the newest version folder's). When any of them is new or its ETag changed, every current file
of the period is downloaded (AWS rewrites them all at a refresh), streamed through the CUR or FOCUS
reader, and written as one spool batch, so the restated period replaces its earlier rows; an
unchanged period costs its share of the LIST and a read of its small manifest, no download. A bad
file refuses its whole period (nothing written for it) and the other periods still go through.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from collectors.billing import formats as billing_formats
from collectors.billing import sources as billing_sources
from collectors.billing.stream import BillingBatch, TableReader
from collectors.errors import InputError

log = logging.getLogger(__name__)

DATA_SUFFIXES = (".parquet", ".csv.gz", ".csv", ".gz")
_ROOT_RE = re.compile(
    r"^(.*?)/?(?:(?:data|metadata)/BILLING_PERIOD=\d{4}-\d{2}|\d{8}-\d{8})(?:/|$)"
)
_PERIOD_RES = (
    re.compile(r"BILLING_PERIOD=(\d{4}-\d{2})"),
    re.compile(r"(?:^|/)(\d{4})(\d{2})01-\d{8}(?:/|$)"),
)


@dataclass(frozen=True)
class S3Object:
    key: str
    etag: str
    size: int
    last_modified: datetime


class ExportState(Protocol):
    def export_objects(self, bucket: str, period: str) -> dict[str, str]: ...

    def record_export_period(
        self, bucket: str, period: str, objects: list[tuple[str, str, int]]
    ) -> None: ...


@dataclass
class PeriodResult:
    period: str
    files: int
    rows: int
    status: str
    bad_input: bool = False
    batch: Path | None = None


def period_of(key: str) -> str | None:
    """`YYYY-MM` of the billing period a key belongs to, from its partition folder."""
    for rx in _PERIOD_RES:
        m = rx.search(key)
        if m:
            return "-".join(m.groups()) if len(m.groups()) == 2 else m.group(1)
    return None


def export_root(key: str) -> str | None:
    """The export a key belongs to: the part before its billing-period folder."""
    m = _ROOT_RE.match(key)
    return m.group(1) if m else None


def is_data_file(key: str) -> bool:
    name = key.rsplit("/", 1)[-1].lower()
    return name.endswith(DATA_SUFFIXES) and not name.endswith("manifest.json")


def is_manifest(key: str) -> bool:
    return key.lower().endswith("manifest.json")


def list_objects(s3: Any, bucket: str, prefix: str) -> list[S3Object]:
    """Every object under `prefix` (one LIST per 1,000 keys)."""
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out.append(S3Object(o["Key"], o["ETag"], int(o["Size"]), o["LastModified"]))
    return out


def manifest_keys(s3: Any, bucket: str, manifest: S3Object) -> set[str] | None:
    """The data files a manifest names (Data Exports `dataFiles` as s3:// URIs, legacy CUR
    `reportKeys` as keys); None when it cannot be read or names none."""
    try:
        body = s3.get_object(Bucket=bucket, Key=manifest.key)["Body"].read()
        doc = json.loads(body)
    except Exception as exc:  # a broken manifest falls back to the folder listing
        log.warning("s3://%s/%s: unreadable manifest (%s)", bucket, manifest.key, exc)
        return None
    keys: set[str] = set()
    for uri in doc.get("dataFiles", []) or []:
        keys.add(re.sub(r"^s3://[^/]+/", "", str(uri)))
    for key in doc.get("reportKeys", []) or []:
        keys.add(str(key))
    return keys or None


def current_files(
    objects: list[S3Object], listed: set[str] | None
) -> tuple[list[S3Object], str | None]:
    """A period's current data files, or ([], why) when its delivery is incomplete."""
    data = [o for o in objects if is_data_file(o.key)]
    if listed is not None:
        chosen = [o for o in data if o.key in listed]
        if len(chosen) < len(listed):
            return [], f"delivery incomplete: the manifest lists {len(listed)} file(s), " + (
                f"{len(chosen)} present"
            )
        return sorted(chosen, key=lambda o: o.key), None
    folders: dict[str, list[S3Object]] = {}
    for o in data:
        folders.setdefault(o.key.rsplit("/", 1)[0], []).append(o)
    if not folders:
        if any(o.key.lower().endswith(".zip") for o in objects):
            return [], "ZIP files are not read: set the report's compression to GZIP or Parquet"
        return [], "no data files"
    newest = max(folders, key=lambda f: max(o.last_modified for o in folders[f]))
    return sorted(folders[newest], key=lambda o: o.key), None


def periods(
    s3: Any, bucket: str, objects: list[S3Object]
) -> Iterator[tuple[str, list[S3Object], str | None]]:
    """(period, current files, why not) for each billing period found, oldest first."""
    by_period: dict[str, list[S3Object]] = {}
    for o in objects:
        p = period_of(o.key)
        if p:
            by_period.setdefault(p, []).append(o)
    for period in sorted(by_period):
        objs = by_period[period]
        manifests = [o for o in objs if is_manifest(o.key)]
        listed = None
        if manifests:
            listed = manifest_keys(s3, bucket, max(manifests, key=lambda o: o.last_modified))
        files, why = current_files(objs, listed)
        yield period, files, why


def download(s3: Any, bucket: str, obj: S3Object, directory: Path) -> Path:
    """The object streamed to a local file, exactly the version listed (If-Match its ETag)."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", obj.key.rsplit("/", 1)[-1]) or "object"
    local = directory / name
    resp = s3.get_object(Bucket=bucket, Key=obj.key, IfMatch=obj.etag)
    with open(local, "wb") as fh:
        for part in resp["Body"].iter_chunks(1 << 20):
            fh.write(part)
    return local


def billing_chunks(local: Path, uri: str, tag_key: str) -> Iterator[pl.DataFrame]:
    """Normalized chunks of one export file, whichever claimed format it is; errors name `uri`."""
    try:
        reader = TableReader(local)
        fmt = billing_sources.identified(billing_formats.identify(reader.columns))
        if fmt is None:
            why = billing_formats.foreign_format(reader.columns)
            raise InputError(local, why or "neither a CUR nor a FOCUS file")
        yield from fmt.read_chunks(local, tag_key=tag_key, reader=reader)
    except InputError as exc:
        raise _renamed(exc, local, uri) from None


def _renamed(exc: InputError, local: Path, uri: str) -> InputError:
    text = str(exc)
    rest = text[len(str(local)) + 2 :] if text.startswith(str(local)) else text
    out = InputError(uri, rest)
    out.row, out.column = exc.row, exc.column
    return out


def pull_exports(
    s3: Any,
    bucket: str,
    prefix: str,
    state: ExportState,
    spool_dir: Path,
    work_dir: Path,
    *,
    tag_key: str = "workload",
) -> list[PeriodResult]:
    """Take every new or changed billing period under `s3://bucket/prefix`."""
    objects = list_objects(s3, bucket, prefix)
    roots = sorted({r for o in objects if (r := export_root(o.key)) is not None})
    if len(roots) > 1:
        names = ", ".join(f"{r}/" for r in roots)
        refusal = (
            f"refused: s3://{bucket}/{prefix} holds several exports ({names}); they may carry "
            "the same dollars: set [aws] export_prefix to one of them"
        )
        return [PeriodResult("", 0, 0, refusal, bad_input=True)]
    results: list[PeriodResult] = []
    for period, files, why in periods(s3, bucket, objects):
        if why:
            results.append(PeriodResult(period, 0, 0, f"skipped: {why}"))
            continue
        seen = state.export_objects(bucket, period)
        if seen == {o.key: o.etag for o in files}:
            results.append(PeriodResult(period, len(files), 0, "unchanged"))
            continue
        results.append(_take_period(s3, bucket, period, files, state, spool_dir, work_dir, tag_key))
    return results


def _take_period(
    s3: Any,
    bucket: str,
    period: str,
    files: list[S3Object],
    state: ExportState,
    spool_dir: Path,
    work_dir: Path,
    tag_key: str,
) -> PeriodResult:
    work_dir.mkdir(parents=True, exist_ok=True)
    batch = BillingBatch(
        spool_dir,
        f"aws-export-{bucket}",
        metadata={"source": f"s3://{bucket}", "billing_period": period, "files": str(len(files))},
    )
    try:
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="export-") as tmp:
            for obj in files:
                uri = f"s3://{bucket}/{obj.key}"
                local = download(s3, bucket, obj, Path(tmp))
                for chunk in billing_chunks(local, uri, tag_key):
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
    state.record_export_period(bucket, period, [(o.key, o.etag, o.size) for o in files])
    return PeriodResult(period, len(files), batch.rows, "taken", batch=path)
