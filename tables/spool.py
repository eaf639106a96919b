"""The append-only spool: collectors, imports and billing pulls write Parquet batches here.

Layout (hive-partitioned, readable by DuckDB, Athena, Spark or Trino), spelled only here:

    <spool>/kind=<kind>/date=<YYYY-MM-DD>/host=<host>/part-<utc stamp>-<random>.parquet

`date` is the UTC date the batch was written. Every file is written under a temporary name in the
same directory and renamed into place, so a reader never sees half a file and a collector never
waits for the database (DESIGN.md §1, rule 1). `partition_dir`, `date_dirs`, `partitions` and
`parse_batch_path` are the one way to build, walk and read that layout (the warehouse, retention,
the live view, shipping and the billing writer use them).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import polars as pl

from tables.files import atomic_write, make_dirs
from tables.records import SCHEMAS, conform

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
TMP_PREFIX = ".tmp-"
# A finished batch file's name (a temporary one starts with TMP_PREFIX).
BATCH_GLOB = "part-*.parquet"
_KIND, _DATE, _HOST = "kind=", "date=", "host="
_NAMED = re.compile(r"part-[A-Za-z0-9_-]+\.parquet")


def safe_part(value: str) -> str:
    """A partition value safe as a single path component (no separators, no `..`)."""
    cleaned = _SAFE.sub("_", value).strip("._") or "_"
    return cleaned[:120]


# The layout ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Partition:
    """Where a batch lies: its kind, UTC date (YYYY-MM-DD) and host (as the path spells it)."""

    kind: str
    date: str
    host: str

    @property
    def rel(self) -> str:
        """`kind=…/date=…/host=…`, relative to the spool (also an S3 key's middle part)."""
        return f"{_KIND}{self.kind}/{_DATE}{self.date}/{_HOST}{self.host}"


def kind_dir(spool_dir: Path, kind: str) -> Path:
    """`<spool>/kind=<kind>`."""
    return Path(spool_dir) / f"{_KIND}{kind}"


def date_prefix(kind: str, date: str) -> str:
    """`kind=<kind>/date=<date>/`: every batch of one kind and day (an S3 listing prefix)."""
    return f"{_KIND}{kind}/{_DATE}{date}/"


def partition_dir(spool_dir: Path, kind: str, date: str, host: str) -> Path:
    """The directory of `kind`'s batches written on `date` by `host` (made path-safe)."""
    return Path(spool_dir) / Partition(kind, date, safe_part(host)).rel


def batch_name(now: datetime) -> str:
    """A new batch file's name: `part-<utc stamp>-<random>.parquet`."""
    return f"part-{now.strftime('%Y%m%dT%H%M%S%f')}-{secrets.token_hex(4)}.parquet"


def new_batch_path(spool_dir: Path, kind: str, host: str, now: datetime) -> Path:
    """Where a batch of `kind` written by `host` at `now` goes (its directory not yet made)."""
    return partition_dir(spool_dir, kind, now.strftime("%Y-%m-%d"), host) / batch_name(now)


def tmp_path(final: Path) -> Path:
    """The temporary name a batch is written under beside its final one (never listed)."""
    return final.with_name(f"{TMP_PREFIX}{final.name}")


def date_dirs(spool_dir: Path, kind: str) -> list[tuple[str, Path]]:
    """(date, directory) of every date partition of `kind`, oldest first."""
    root = kind_dir(spool_dir, kind)
    if not root.is_dir():
        return []
    found = [(d.name[len(_DATE) :], d) for d in root.iterdir() if d.name.startswith(_DATE)]
    return sorted((date, d) for date, d in found if d.is_dir())


def host_dirs(date_dir: Path) -> list[Path]:
    """The host partitions of one date directory, by name."""
    return sorted(h for h in date_dir.iterdir() if h.name.startswith(_HOST) and h.is_dir())


def partitions(
    spool_dir: Path,
    kind: str,
    *,
    since_date: str | None = None,
    dates: set[str] | None = None,
) -> list[Path]:
    """The (kind, date, host) directories of `kind`, oldest date first; `since_date`
    (YYYY-MM-DD) skips older dates, `dates` keeps only those."""
    out: list[Path] = []
    for date, directory in date_dirs(spool_dir, kind):
        if (since_date and date < since_date) or (dates is not None and date not in dates):
            continue
        out.extend(host_dirs(directory))
    return out


def partition_date(partition: Path) -> str:
    """The date (YYYY-MM-DD) of a (kind, date, host) directory."""
    return partition.parent.name[len(_DATE) :]


def parse_batch_path(rel: str | PurePosixPath) -> tuple[Partition, str] | None:
    """(partition, file name) of a finished batch's path relative to the spool
    (`kind=…/date=…/host=…/part-….parquet`); None for anything else (a temporary file, another
    depth, an empty or `..` component)."""
    parts = PurePosixPath(rel).parts if isinstance(rel, PurePosixPath) else rel.split("/")
    if len(parts) != 4 or any(p in ("", ".", "..") for p in parts):
        return None
    kind, date, host, name = parts
    if not (kind.startswith(_KIND) and date.startswith(_DATE) and host.startswith(_HOST)):
        return None
    if name.startswith(TMP_PREFIX) or not name.endswith(".parquet"):
        return None
    return Partition(kind[len(_KIND) :], date[len(_DATE) :], host[len(_HOST) :]), name


# Writing and listing batches ------------------------------------------------------------------
def write_batch(
    spool_dir: Path,
    kind: str,
    frame: pl.DataFrame,
    host: str,
    *,
    now: datetime | None = None,
    metadata: dict[str, str] | None = None,
    name: str | None = None,
) -> Path:
    """Write one batch atomically and return its final path.

    `metadata` is stored in the Parquet footer (for example the source file a batch came from).
    `name` (`part-….parquet`) replaces the random one, for a writer that names its batches after
    what they hold so that it can find them again (`find_batch`); a batch of that name in the
    same partition is replaced.
    """
    if kind not in SCHEMAS:
        raise ValueError(f"unknown spool kind {kind!r}")
    frame = conform(frame, kind)
    final = new_batch_path(spool_dir, kind, host, now or datetime.now(UTC))
    if name is not None:
        if not _NAMED.fullmatch(name):
            raise ValueError(f"batch name {name!r} is not part-<letters, digits, - or _>.parquet")
        final = final.with_name(name)
    make_dirs(final.parent)

    def write(tmp: Path) -> None:
        try:
            frame.write_parquet(tmp, compression="zstd", metadata=metadata or None)
        except pl.exceptions.PolarsError as exc:  # Polars reports a full disk as ComputeError
            raise OSError(f"cannot write {tmp}: {exc}") from exc

    return atomic_write(final, write, tmp=tmp_path(final))


def find_batch(spool_dir: Path, kind: str, host: str, name: str) -> Path | None:
    """A finished batch of `kind` and `host` named `name`, whatever its date partition."""
    if not _NAMED.fullmatch(name):
        return None
    found = sorted(kind_dir(spool_dir, kind).glob(f"{_DATE}*/{_HOST}{safe_part(host)}/{name}"))
    return found[0] if found else None


def list_batches(spool_dir: Path, kind: str, *, since_date: str | None = None) -> list[Path]:
    """Finished batch files of `kind`, oldest first; `since_date` (YYYY-MM-DD) skips older dates."""
    files = [
        p
        for partition in partitions(spool_dir, kind, since_date=since_date)
        for p in partition.iterdir()
        if p.suffix == ".parquet" and not p.name.startswith(TMP_PREFIX)
    ]
    files.sort(key=lambda p: (p.name, str(p)))
    return files


def read_batch_metadata(path: Path) -> dict[str, str]:
    """The key/value metadata stored with a batch."""
    return pl.read_parquet_metadata(path)
