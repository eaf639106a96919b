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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from collectors.billing import formats as billing_formats
from collectors.billing import sources as billing_sources
from collectors.billing.provider import (
    ExportState,
    PeriodResult,
    StoredObject,
    current_files,
    export_periods,
)
from collectors.billing.provider import pull_exports as pull_store_exports
from collectors.billing.stream import TableReader
from collectors.errors import InputError

__all__ = ["AwsLayout", "ExportState", "PeriodResult", "S3Object", "S3Store", "pull_exports"]

log = logging.getLogger(__name__)

_ROOT_RE = re.compile(
    r"^(.*?)/?(?:(?:data|metadata)/BILLING_PERIOD=\d{4}-\d{2}|\d{8}-\d{8})(?:/|$)"
)
_PERIOD_RES = (
    re.compile(r"BILLING_PERIOD=(\d{4}-\d{2})"),
    re.compile(r"(?:^|/)(\d{4})(\d{2})01-\d{8}(?:/|$)"),
)


# An S3 object as listed (the interface's name for any cloud's object).
S3Object = StoredObject


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
    return _manifest_keys(S3Store(s3, bucket), manifest)


def periods(
    s3: Any, bucket: str, objects: list[S3Object]
) -> Iterator[tuple[str, list[S3Object], str | None]]:
    """(period, current files, why not) for each billing period found, oldest first."""
    return export_periods(S3Store(s3, bucket), AwsLayout(), objects)


def download(s3: Any, bucket: str, obj: S3Object, directory: Path) -> Path:
    """The object streamed to a local file, exactly the version listed (If-Match its ETag)."""
    local = directory / (re.sub(r"[^A-Za-z0-9._-]+", "_", obj.key.rsplit("/", 1)[-1]) or "object")
    S3Store(s3, bucket).download(obj, local)
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


class S3Store:
    """An S3 bucket as the export pull's `ObjectStore` (a boto3 client from boto3's chain)."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}"

    @property
    def state_key(self) -> str:
        return self.bucket

    def list(self, prefix: str) -> list[StoredObject]:
        return list_objects(self.s3, self.bucket, prefix)

    def read(self, key: str) -> bytes:
        body: bytes = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def download(self, obj: StoredObject, local: Path) -> None:
        """Exactly the version listed (If-Match its ETag)."""
        resp = self.s3.get_object(Bucket=self.bucket, Key=obj.key, IfMatch=obj.etag)
        with open(local, "wb") as fh:
            for part in resp["Body"].iter_chunks(1 << 20):
                fh.write(part)


class AwsLayout:
    """Data Exports and legacy CUR folders (the module docstring), read as CUR or FOCUS."""

    section = "aws"

    def export_root(self, key: str) -> str | None:
        return export_root(key)

    def period_of(self, key: str) -> str | None:
        return period_of(key)

    def current_files(
        self, store: Any, objects: list[StoredObject]
    ) -> tuple[list[StoredObject], str | None]:
        manifests = [o for o in objects if is_manifest(o.key)]
        listed = None
        if manifests:
            newest = max(manifests, key=lambda o: (o.last_modified, o.key))  # ties: by name
            listed = _manifest_keys(store, newest)
        return current_files(objects, listed)

    def chunks(self, local: Path, uri: str, tag_key: str) -> Iterator[pl.DataFrame]:
        return billing_chunks(local, uri, tag_key)


def _manifest_keys(store: Any, manifest: StoredObject) -> set[str] | None:
    """The data files a manifest names; None when it cannot be read or names none."""
    try:
        doc = json.loads(store.read(manifest.key))
    except Exception as exc:  # a broken manifest falls back to the folder listing
        log.warning("%s/%s: unreadable manifest (%s)", store.location, manifest.key, exc)
        return None
    return _listed_keys(doc)


def _listed_keys(doc: Any) -> set[str] | None:
    keys: set[str] = set()
    if not isinstance(doc, dict):
        return None
    for uri in doc.get("dataFiles", []) or []:
        keys.add(re.sub(r"^s3://[^/]+/", "", str(uri)))
    for key in doc.get("reportKeys", []) or []:
        keys.add(str(key))
    return keys or None


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
    """Take every new or changed billing period under `s3://bucket/prefix` (the generic export
    pipeline of collectors/billing/provider.py over S3)."""
    return pull_store_exports(
        S3Store(s3, bucket),
        AwsLayout(),
        prefix,
        state,
        spool_dir,
        work_dir,
        batch_name=f"aws-export-{bucket}",
        tag_key=tag_key,
    )
