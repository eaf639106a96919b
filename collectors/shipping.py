"""Moving spool batches between hosts: each agent ships its finished batches to a shared place,
the central daemon ingests them from there (DESIGN.md §1, "Past one machine"; docs/multi-host.md).

- A shared directory (NFS, a mounted volume): the agent copies a batch to the same relative path
  under the target (`kind=…/date=…/host=…/part-….parquet`) under a temporary name, fsyncs it and
  renames it into place, then deletes its local copy. The central `[warehouse] spool_dir` is that
  directory, so the daemon ingests the batches where they land.
- An S3 prefix: the agent PUTs each batch to `<prefix>/<same relative path>` (an S3 object
  appears whole or not at all), then deletes its local copy. The central daemon's `S3Puller`
  lists the recent date partitions, downloads the objects it has not taken yet into its local
  spool (temporary name, then rename) and remembers their keys, so a batch compacted away locally
  is never downloaded again. The objects stay in the bucket: Athena, Spark or Trino read them.

A batch is deleted locally only after the copy or PUT succeeded; a failed run leaves it for the
next one. A crash between the two ships the same file again under the same name: the copy
overwrites itself, and the warehouse, which keys its ingest ledger by that relative path (and
deduplicates samples by key), never counts it twice.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from tables import spool
from tables.files import atomic_write, make_dirs
from tables.records import SCHEMAS

log = logging.getLogger(__name__)

STATE_DIR = "_pulled"


class ShipTargetError(ValueError):
    """A `[ship] target` or `pull_from` that is neither a directory path nor s3://bucket/prefix."""


@dataclass(frozen=True)
class Target:
    kind: str  # "dir" | "s3"
    path: Path | None = None
    bucket: str = ""
    prefix: str = ""

    def key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def __str__(self) -> str:
        if self.kind == "dir":
            return str(self.path)
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def parse_target(text: str, *, where: str = "[ship] target") -> Target:
    """`/shared/spool` or `s3://bucket/optional/prefix`."""
    text = text.strip()
    if not text:
        raise ShipTargetError(f"{where} is empty")
    if text.startswith("s3://"):
        bucket, _, prefix = text[5:].partition("/")
        if not bucket:
            raise ShipTargetError(f"{where} {text!r} names no bucket (s3://bucket/prefix)")
        return Target("s3", bucket=bucket, prefix=prefix.strip("/"))
    if "://" in text:
        raise ShipTargetError(f"{where} {text!r}: only a directory or s3://bucket/prefix")
    return Target("dir", path=Path(text).expanduser())


def s3_client(region: str | None = None) -> Any:
    """A boto3 S3 client from boto3's credential chain (AWS_ENDPOINT_URL is honoured)."""
    import boto3

    return boto3.client("s3", region_name=region or None)


@dataclass
class ShipResult:
    files: int = 0
    bytes: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def finished_batches(spool_dir: Path) -> Iterator[tuple[Path, str]]:
    """(path, relative path) of every finished batch in a spool, oldest first per kind."""
    for kind in SCHEMAS:
        for path in spool.list_batches(spool_dir, kind):
            yield path, path.relative_to(spool_dir).as_posix()


class Shipper:
    """Ships an agent's finished spool batches to `target` (see the module doc)."""

    def __init__(self, spool_dir: Path, target: Target | str, *, client: Any = None) -> None:
        self.spool_dir = Path(spool_dir)
        self.target = parse_target(target) if isinstance(target, str) else target
        own = self.spool_dir.resolve()
        if self.target.kind == "dir" and self.target.path and self.target.path.resolve() == own:
            raise ShipTargetError("[ship] target is this host's own spool directory")
        self._client = client
        self._failing = False  # log a failure once, then its recovery once

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def ship_once(self) -> ShipResult:
        result = ShipResult()
        for path, rel in finished_batches(self.spool_dir):
            try:
                size = path.stat().st_size
                if self.target.kind == "dir":
                    self._copy(path, rel)
                else:
                    self.client.upload_file(str(path), self.target.bucket, self.target.key(rel))
            except FileNotFoundError:
                continue  # taken meanwhile (another shipper, or the file was moved aside)
            except Exception as exc:  # network, permissions, disk full on the target
                result.failed += 1
                result.errors.append(f"{rel}: {type(exc).__name__}: {exc}")
                break  # the target is unwell: try again next run, oldest batch first
            path.unlink(missing_ok=True)
            result.files += 1
            result.bytes += size
        self._report(result)
        return result

    def _copy(self, path: Path, rel: str) -> None:
        assert self.target.path is not None
        dest = self.target.path / rel
        make_dirs(dest.parent)
        atomic_write(dest, lambda tmp: shutil.copyfile(path, tmp), tmp=spool.tmp_path(dest))

    def _report(self, result: ShipResult) -> None:
        if result.failed and not self._failing:
            log.warning(
                "shipping to %s failed (%s); batches stay in %s and are retried",
                self.target,
                result.errors[0],
                self.spool_dir,
            )
            self._failing = True
        elif not result.failed and self._failing:
            log.info("shipping to %s works again", self.target)
            self._failing = False
        if result.files:
            log.debug(
                "shipped %d batch(es), %d bytes to %s", result.files, result.bytes, self.target
            )

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Ship every `interval_s` until `stop` is set, then once more."""
        while not stop.is_set():
            t0 = time.monotonic()
            self._guarded()
            stop.wait(max(0.0, interval_s - (time.monotonic() - t0)))
        self._guarded()

    def _guarded(self) -> None:
        try:
            self.ship_once()
        except Exception:  # never let shipping kill the agent
            log.exception("shipping run failed; the next run tries again")


# The central side: S3 -> local spool -----------------------------------------------------------
@dataclass
class PullResult:
    files: int = 0
    bytes: int = 0


class S3Puller:
    """Downloads new batches under an S3 prefix into the local spool (see the module doc)."""

    def __init__(
        self, source: Target | str, spool_dir: Path, *, days: int = 3, client: Any = None
    ) -> None:
        self.source = (
            parse_target(source, where="[ship] pull_from") if isinstance(source, str) else source
        )
        if self.source.kind != "s3":
            raise ShipTargetError(
                "[ship] pull_from must be s3://bucket/prefix (a shared directory needs no"
                " puller: set [warehouse] spool_dir to it)"
            )
        self.spool_dir = Path(spool_dir)
        self.days = days
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = s3_client()
        return self._client

    def _state(self, kind: str, date: str) -> Path:
        return self.spool_dir / STATE_DIR / kind / f"{date}.txt"

    def _taken(self, kind: str, date: str) -> set[str]:
        try:
            return set(self._state(kind, date).read_text(encoding="utf-8").split())
        except FileNotFoundError:
            return set()

    def pull_once(self, *, now: datetime | None = None) -> PullResult:
        now = now or datetime.now(UTC)
        result = PullResult()
        dates = [(now - timedelta(days=d)).strftime("%Y-%m-%d") for d in range(self.days)]
        for kind in SCHEMAS:
            for date in dates:
                self._pull_partition(kind, date, result)
        self._forget_old_state(dates)
        if result.files:
            log.info("pulled %d batch(es) from %s", result.files, self.source)
        return result

    def _pull_partition(self, kind: str, date: str, result: PullResult) -> None:
        prefix = self.source.key(spool.date_prefix(kind, date))
        taken = self._taken(kind, date)
        state = self._state(kind, date)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.source.bucket, Prefix=prefix
        )
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key in taken or not key.endswith(".parquet"):
                    continue
                rel = key[len(self.source.key("")) :]
                if spool.parse_batch_path(rel) is None:
                    log.warning("skipping s3://%s/%s: not a spool batch", self.source.bucket, key)
                    continue
                dest = self.spool_dir / rel
                make_dirs(dest.parent)
                atomic_write(dest, partial(self._download, key), tmp=spool.tmp_path(dest))
                make_dirs(state.parent)
                with open(state, "a", encoding="utf-8") as fh:
                    fh.write(key + "\n")
                taken.add(key)
                result.files += 1
                result.bytes += int(obj.get("Size", 0))

    def _download(self, key: str, tmp: Path) -> None:
        self.client.download_file(self.source.bucket, key, str(tmp))

    def _forget_old_state(self, dates: list[str]) -> None:
        """Drop the memory of partitions older than those listed (a day of margin kept)."""
        oldest = min(dates)
        margin = (datetime.fromisoformat(oldest) - timedelta(days=1)).strftime("%Y-%m-%d")
        root = self.spool_dir / STATE_DIR
        for state in root.glob("*/*.txt") if root.is_dir() else []:
            if state.stem < margin:
                state.unlink(missing_ok=True)


def pull_job(ship: Any, spool_dir: Path) -> Callable[[], object]:
    """The daemon's ship-pull tick (cli/jobs.py runs it every `[ship] interval_s` when
    `[ship] pull_from` is set; `ship` is that configuration section)."""
    return S3Puller(ship.pull_from, spool_dir, days=ship.pull_days).pull_once
