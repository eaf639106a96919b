"""The lake: raw samples, process samples, health records and bill lines as Apache Iceberg tables
(DESIGN.md §1 "Past one machine"; `[lake]` in the configuration; docs/multi-host.md).

The API the engines build on (part B's Ray engine reads partitions through it):

- `open_lake(cfg) -> Lake`: the catalog of `[lake]` (SQL on a SQLite file by default, Glue, REST)
  and its tables (created on first use from `tables/lake.py`).
- `Lake.commit_spool_files(kind, files) -> CommitResult`: the spool batches become one table
  commit, exactly once (below).
- `Lake.commit_frame(kind, frame, keys)`: the same for rows already read (the ingest, which
  reads the files once for the lake and the rollups).
- `Lake.partitions(kind, since, until) -> [(day, host)]`, `Lake.scan(kind, day, host, columns)
  -> pl.DataFrame`, `Lake.raw_for(host, hour)`: reads, one day-and-host partition at a time.
- `Lake.maintain(now)`: Iceberg's own retention and compaction (expire snapshots, rewrite a
  partition's small files as one in one commit, remove orphan files).

Data files. The spool's own files are not added as they are (`add_files` zero copy): an
agent's batch holds 5 seconds (a few hundred bytes of Parquet each), one flushed just after
midnight holds rows of two days (an Iceberg data file belongs to one partition), and its values
are unrounded. Each commit writes one file per day-and-host partition instead (values rounded,
time delta-encoded, zstd) and adds those; the `lake` job's rewrite later sorts a partition's
files into one.

Exactly once. Every commit records the spool keys it took (paths under the spool root) in its
snapshot summary (`gpuledger.spool-files`), in the same atomic catalog commit as its data files.
A committer first refreshes the table and leaves out every key already recorded, writes the
rest as data files, then commits; when the catalog refuses the commit because another committer
got in first (`CommitFailedException`: the SQL catalog's optimistic compare-and-swap on the
metadata location), it refreshes, checks the keys again and retries. So a re-delivered file, a
crash between writing data files and the catalog commit (the files are orphans; the next run
commits the spool files again; maintenance removes the orphans) and committers racing never
lose or double a row. Before maintenance expires snapshots it folds their keys into the
`spool_ledger` table, which committers read after the table itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from tables import spool
from tables.lake import (
    LAKE_TABLES,
    SPOOL_FILES_PROPERTY,
    LakeTable,
    iceberg_schema,
    partition_spec,
)
from tables.records import SCHEMAS, conform, read_spool_file

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

    from config.settings import Config

log = logging.getLogger(__name__)

# The table that keeps the spool keys of expired snapshots (see the module's docstring).
LEDGER_TABLE = "spool_ledger"
# Commit attempts before giving up (each after a refresh; another committer won each time).
MAX_ATTEMPTS = 50
# Data files not referenced by any snapshot and older than this are removed by maintenance (a
# committer may be between writing them and its catalog commit).
ORPHAN_GRACE = timedelta(hours=1)
# Table properties: our own retry loop (refresh, re-check the keys) replaces pyiceberg's, which
# would commit the same files again without asking which keys got in meanwhile.
TABLE_PROPERTIES = {
    "commit.retry.num-retries": "0",
    "write.parquet.compression-codec": "zstd",
    "format-version": "2",
}
# How data files are written: sorted by the lake table's sort keys, values quantized as the
# compacted spool files are (warehouse/retention.py QUANTA), zstd.
ZSTD_LEVEL = 3
ROW_GROUP_ROWS = 1 << 20


class LakeError(RuntimeError):
    """The lake cannot do what was asked; the message says why (a key, a file, the catalog)."""


class LakeUnavailable(OSError):
    """The lake's catalog or storage failed during an ingest (an OSError, so the ingest raises
    it and sets no batch aside: warehouse/quarantine.py; the files stay pending and are taken
    again on the next run)."""


@dataclass
class CommitResult:
    """What one `commit_spool_files`/`commit_frame` call did: the spool keys it committed, those
    an earlier commit had already taken (re-delivered or raced), the rows and data files it
    added, how many catalog attempts it took and the snapshot it made (None: nothing new)."""

    kind: str
    committed: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    rows: int = 0
    data_files: int = 0
    attempts: int = 0
    snapshot_id: int | None = None


@dataclass
class MaintenanceResult:
    expired_snapshots: int = 0
    folded_keys: int = 0
    compacted_partitions: int = 0
    files_in: int = 0
    files_out: int = 0
    orphans_removed: int = 0

    def summary(self) -> str:
        return (
            f"lake: expired {self.expired_snapshots} snapshot(s), compacted"
            f" {self.compacted_partitions} partition(s) ({self.files_in} -> {self.files_out}"
            f" files), removed {self.orphans_removed} orphan file(s)"
        )


def encode_keys(keys: Iterable[str]) -> str:
    """Spool keys as a snapshot summary value: zlib + base64 of a sorted JSON list."""
    text = json.dumps(sorted(keys), separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode("ascii")


def decode_keys(value: str) -> list[str]:
    return json.loads(zlib.decompress(base64.b64decode(value)))


def catalog_properties(cfg: Config) -> dict[str, str]:
    """The pyiceberg catalog properties `[lake]` gives (the warehouse, S3 endpoint, region)."""
    lake = cfg.lake
    props = {"warehouse": cfg.lake_warehouse}
    if lake.catalog_uri or lake.catalog == "sql":
        props["uri"] = cfg.lake_catalog_uri
    if lake.s3_endpoint:
        props["s3.endpoint"] = lake.s3_endpoint
    if lake.region:
        props["s3.region"] = lake.region
        if lake.catalog == "glue":
            props["glue.region"] = lake.region
    return props


def load_catalog(cfg: Config) -> Catalog:
    """The Iceberg catalog of `[lake]`; a local warehouse folder is created."""
    props = catalog_properties(cfg)
    if props["warehouse"].startswith("file://"):
        Path(props["warehouse"].removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    if cfg.lake.catalog == "sql":
        from pyiceberg.catalog.sql import SqlCatalog

        return SqlCatalog("gpuledger", **props)
    from pyiceberg.catalog import load_catalog as load

    return load("gpuledger", type=cfg.lake.catalog, **props)


def open_lake(cfg: Config, *, spool_dir: Path | None = None) -> Lake:
    """The lake `[lake]` describes, its spool keys relative to `spool_dir` (default the
    configured spool). Raises LakeError when `[lake] enabled` is false."""
    if not cfg.lake.enabled:
        raise LakeError("the lake is off: set [lake] enabled = true (docs/multi-host.md)")
    lake = Lake(load_catalog(cfg), cfg.lake.namespace, spool_dir or cfg.spool_dir)
    lake.quantize = cfg.retention.compact_quantize  # the resolution compacted spool files keep
    return lake


class Lake:
    """The Iceberg tables of one namespace; spool keys are paths relative to `spool_dir`."""

    def __init__(self, catalog: Catalog, namespace: str, spool_dir: Path) -> None:
        self.catalog = catalog
        self.namespace = namespace
        self.spool_dir = Path(spool_dir)
        self._tables: dict[str, Table] = {}
        self._decoded: dict[int, list[str]] = {}  # snapshot id -> its spool keys
        self.quantize = True

    # Tables ----------------------------------------------------------------------------------
    def table(self, kind: str) -> Table:
        """The lake table of a spool kind (created on first use), refreshed."""
        if kind not in LAKE_TABLES:
            raise LakeError(f"not a lake table: {kind!r} (tables: {', '.join(LAKE_TABLES)})")
        cached = self._tables.get(kind)
        if cached is not None:
            return cached.refresh()
        table = self._create_or_load(kind, lambda: self._create(LAKE_TABLES[kind]))
        table = self._evolve(table, LAKE_TABLES[kind])
        self._tables[kind] = table
        return table

    def _evolve(self, table: Table, lt: LakeTable) -> Table:
        """Add the columns the record gained since the table was made (tables/records.py: a new
        column comes last), by name: older data files read them as nulls."""
        from pyiceberg.exceptions import CommitFailedException

        for _ in range(MAX_ATTEMPTS):
            have = {f.name for f in table.schema().fields}
            if all(name in have for name in lt.record.names):
                return table
            try:
                with table.update_schema() as update:
                    update.union_by_name(iceberg_schema(lt))
            except CommitFailedException:  # another process committed first: look again
                pass
            table = table.refresh()
        raise LakeError(f"{lt.name}: the catalog refused {MAX_ATTEMPTS} schema updates in a row")

    def _create_or_load(self, name: str, create) -> Table:
        from pyiceberg.exceptions import (
            NamespaceAlreadyExistsError,
            NoSuchTableError,
            TableAlreadyExistsError,
        )

        ident = f"{self.namespace}.{name}"
        try:
            return self.catalog.load_table(ident)
        except NoSuchTableError:
            pass
        with contextlib.suppress(NamespaceAlreadyExistsError):
            self.catalog.create_namespace(self.namespace)
        try:
            return create()
        except TableAlreadyExistsError:  # another committer created it first
            return self.catalog.load_table(ident)

    def _create(self, lt: LakeTable) -> Table:
        from pyiceberg.table.sorting import SortField, SortOrder
        from pyiceberg.transforms import IdentityTransform

        schema = iceberg_schema(lt)
        order = SortOrder(
            *(
                SortField(source_id=schema.find_field(c).field_id, transform=IdentityTransform())
                for c in lt.sort
            )
        )
        return self.catalog.create_table(
            f"{self.namespace}.{lt.name}",
            schema,
            partition_spec=partition_spec(lt),
            sort_order=order,
            properties=TABLE_PROPERTIES,
        )

    def _ledger(self) -> Table:
        def create() -> Table:
            from pyiceberg.schema import Schema
            from pyiceberg.types import LongType, NestedField, StringType

            schema = Schema(
                NestedField(1, "kind", StringType(), required=False),
                NestedField(2, "key", StringType(), required=False),
                NestedField(3, "snapshot_id", LongType(), required=False),
                NestedField(4, "date", StringType(), required=False),
            )
            return self.catalog.create_table(
                f"{self.namespace}.{LEDGER_TABLE}", schema, properties=TABLE_PROPERTIES
            )

        return self._create_or_load(LEDGER_TABLE, create).refresh()

    # Exactly once ----------------------------------------------------------------------------
    def key(self, path: str | Path) -> str:
        """A spool file's key: its path under the spool root (kind=…/date=…/host=…/part-…)."""
        rel = Path(path).resolve().relative_to(self.spool_dir.resolve())
        return PurePosixPath(*rel.parts).as_posix()

    def committed_keys(
        self, kind: str, table: Table | None = None, among: Iterable[str] | None = None
    ) -> set[str]:
        """Every spool key a commit of `kind` has taken: the live snapshots' summaries, then the
        keys maintenance folded out of expired ones (read in that order: see the docstring);
        with `among`, of the folded ones only those of the same spool dates (the ledger's files
        are skipped by their date statistics)."""
        table = table if table is not None else self.table(kind)
        keys: set[str] = set()
        for snap in table.snapshots():
            value = (
                snap.summary.additional_properties.get(SPOOL_FILES_PROPERTY)
                if snap.summary
                else None
            )
            if value is None:
                continue
            if snap.snapshot_id not in self._decoded:
                self._decoded[snap.snapshot_id] = decode_keys(value)
            keys.update(self._decoded[snap.snapshot_id])
        dates = None if among is None else sorted({spool_date(k) for k in among})
        keys.update(self._folded_keys(kind, dates))
        return keys

    def _folded_keys(self, kind: str, dates: list[str] | None) -> set[str]:
        ledger = self._ledger()
        if ledger.current_snapshot() is None:
            return set()
        where = _pred("EqualTo", "kind", kind)
        if dates is not None:
            where = _pred("And", where, _pred("In", "date", tuple(dates)))
        rows = ledger.scan(row_filter=where, selected_fields=("key",))
        return {str(k) for k in rows.to_arrow().column("key").to_pylist()}

    def commit_spool_files(self, kind: str, files: Sequence[str | Path]) -> CommitResult:
        """Commit spool batches of `kind` (paths under the spool root) exactly once; see the
        module's docstring. Files whose keys are already in are not read."""
        paths = {self.key(p): Path(p) for p in files}
        if LAKE_TABLES[kind].replace_key is not None and len(paths) > 1:
            # Each batch replaces what the one before it said: one commit each, oldest first.
            results = [self.commit_spool_files(kind, [paths[k]]) for k in sorted(paths)]
            return _merged(kind, results)
        table = self.table(kind)
        todo = sorted(set(paths) - self.committed_keys(kind, table, paths))
        if not todo:
            return CommitResult(kind, already=sorted(paths), attempts=0)
        frames = [
            conform(read_spool_file(paths[k], kind), kind).with_columns(_key=pl.lit(k))
            for k in todo
        ]
        frame = pl.concat(frames, how="vertical")
        result = self.commit_frame(kind, frame, todo)
        result.already = sorted(set(result.already) | (set(paths) - set(todo)))
        return result

    def commit_frame(self, kind: str, frame: pl.DataFrame, keys: Sequence[str]) -> CommitResult:
        """Commit rows read from the spool files `keys` exactly once. `frame` has the kind's
        columns and `_key` (the spool key of each row's file; rows of keys already committed
        are left out); without `_key` all rows belong to one key."""
        if "_key" not in frame.columns:
            if len(keys) != 1:
                raise ValueError("commit_frame: a frame without _key needs exactly one key")
            frame = frame.with_columns(_key=pl.lit(keys[0]))
        if LAKE_TABLES[kind].replace_key is not None:
            return self._commit_replacing(kind, frame, keys)
        result = CommitResult(kind)
        written: tuple[list[str], list[str]] | None = None  # (keys, data files) on storage
        for attempt in range(1, MAX_ATTEMPTS + 1):
            result.attempts = attempt
            table = self.table(kind)
            done = self.committed_keys(kind, table, keys)
            todo = sorted(set(keys) - done)
            result.already = sorted(set(keys) & done)
            if not todo:
                if written:
                    self._delete(table, written[1])
                return result
            if written is None or written[0] != todo:
                if written:
                    self._delete(table, written[1])
                rows = frame if len(todo) == len(keys) else frame.filter(pl.col("_key").is_in(todo))
                rows = rows.drop("_key")
                # In arrival order: maintenance's rewrite sorts a partition's files into one.
                paths = self._write_data_files(table, LAKE_TABLES[kind], rows, sort=False)
                written = (todo, paths)
                result.rows = rows.height
            if self._try_commit(table, written[1], todo, result):
                result.committed = todo
                result.data_files = len(written[1])
                return result
            time.sleep(min(0.05 * attempt, 1.0))
        raise LakeError(f"{kind}: the catalog refused {MAX_ATTEMPTS} commits in a row")

    def _commit_replacing(
        self, kind: str, frame: pl.DataFrame, keys: Sequence[str]
    ) -> CommitResult:
        """Commit rows whose replace key values replace the table's rows with those values
        (bills: a restated period's `scope`), as the warehouse does: one overwrite commit that
        drops the data files holding those values, adds them back without those rows and adds
        the batch (copy on write), recording the keys; retried as `commit_frame` is."""
        lt = LAKE_TABLES[kind]
        assert lt.replace_key is not None
        result = CommitResult(kind)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            result.attempts = attempt
            table = self.table(kind)
            done = self.committed_keys(kind, table, keys)
            todo = sorted(set(keys) - done)
            result.already = sorted(set(keys) & done)
            if not todo:
                return result
            rows = conform(frame.filter(pl.col("_key").is_in(todo)).drop("_key"), kind)
            values = rows[lt.replace_key].drop_nulls().unique().sort().to_list()
            old = self._files_with(table, lt.replace_key, values)
            kept = [self._read_file(table, f.file_path) for f in old]
            kept = [k.filter(~pl.col(lt.replace_key).is_in(values)) for k in kept]
            paths = self._write_data_files(table, lt, pl.concat([*kept, rows], how="diagonal"))
            props = {SPOOL_FILES_PROPERTY: encode_keys(todo)}
            if self._replace_files(table, old, paths, props):
                current = table.current_snapshot()
                result.snapshot_id = current.snapshot_id if current else None
                result.committed, result.rows = todo, rows.height
                result.data_files = len(paths)
                return result
            time.sleep(min(0.05 * attempt, 1.0))
        raise LakeError(f"{kind}: the catalog refused {MAX_ATTEMPTS} commits in a row")

    def _files_with(self, table: Table, column: str, values: list) -> list[Any]:
        """The data files that may hold `column` in `values` (by their statistics)."""
        if not values or table.current_snapshot() is None:
            return []
        found = table.scan(row_filter=_pred("In", column, tuple(values))).plan_files()
        return [task.file for task in found]

    def _read_file(self, table: Table, path: str) -> pl.DataFrame:
        with table.io.new_input(path).open() as stream:
            frame = pl.from_arrow(pq.read_table(stream))  # type: ignore[arg-type]
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _replace_files(
        self, table: Table, old: list[Any], paths: list[str], props: dict[str, str]
    ) -> bool:
        """One overwrite commit: `old` data files out, the files at `paths` in. False (and the
        new files deleted) when another committer changed the table first."""
        from pyiceberg.exceptions import CommitFailedException
        from pyiceberg.table import TableProperties, _parquet_files_to_data_files

        try:
            with table.transaction() as tx:
                if tx.table_metadata.name_mapping() is None:  # as add_files sets it
                    mapping = tx.table_metadata.schema().name_mapping.model_dump_json()
                    tx.set_properties({TableProperties.DEFAULT_NAME_MAPPING: mapping})
                with tx.update_snapshot(snapshot_properties=props).overwrite() as rewrite:
                    for f in old:
                        rewrite.delete_data_file(f)
                    for df in _parquet_files_to_data_files(tx.table_metadata, paths, table.io):
                        rewrite.append_data_file(df)
        except CommitFailedException:
            self._delete(table, paths)
            return False
        return True

    def _try_commit(self, table: Table, files: list[str], keys: list[str], result) -> bool:
        """One catalog commit of `files` recording `keys`; False when another committer changed
        the table first (the files stay for the next attempt)."""
        from pyiceberg.exceptions import CommitFailedException

        props = {SPOOL_FILES_PROPERTY: encode_keys(keys)}
        try:
            if files:
                table.add_files(files, snapshot_properties=props, check_duplicate_files=False)
            else:  # every row of these files was empty: the keys still get their snapshot
                table.append(_empty_arrow(table), snapshot_properties=props)
        except CommitFailedException:
            return False
        current = table.current_snapshot()
        result.snapshot_id = current.snapshot_id if current else None
        return True

    # Writing data files ---------------------------------------------------------------------
    def _write_data_files(
        self, table: Table, lt: LakeTable, rows: pl.DataFrame, *, sort: bool = True
    ) -> list[str]:
        """One Parquet file per partition (day, identity columns) under the table's data/."""
        if rows.height == 0:
            return []
        paths = []
        for part in prepare_rows(lt, rows, quantize=self.quantize, sort=sort):
            first = part.row(0, named=True)
            dirs = [f"day={first['_day']}"] + [
                f"{c}={spool.safe_part(str(first[c]))}" for c in lt.identity
            ]
            path = f"{table.location()}/data/{'/'.join(dirs)}/{uuid.uuid4().hex}.parquet"
            write_data_file(table, path, part.drop("_day"))
            paths.append(path)
        return paths

    def _delete(self, table: Table, paths: list[str]) -> None:
        for path in paths:
            try:
                table.io.delete(path)
            except Exception as exc:  # left for maintenance's orphan removal
                log.warning("could not delete uncommitted lake file %s: %s", path, exc)

    # Reads -------------------------------------------------------------------------------------
    def partitions(
        self, kind: str, since: date | None = None, until: date | None = None
    ) -> list[tuple[date, str]]:
        """(day, host) of every partition with rows, days in [since, until), sorted; for billing
        the host is the provider (its account is the third partition value)."""
        table = self._existing(kind)
        if table is None or table.current_snapshot() is None:
            return []
        lt = LAKE_TABLES[kind]
        parts: list[dict[str, Any]] = table.inspect.partitions().column("partition").to_pylist()  # type: ignore[assignment]
        out = {
            (p["day"], p[lt.identity[0]])
            for p in parts
            if (since is None or p["day"] >= since) and (until is None or p["day"] < until)
        }
        return sorted(out, key=lambda t: (t[0], t[1] or ""))

    def scan(
        self, kind: str, day: date, host: str, columns: Sequence[str] | None = None
    ) -> pl.DataFrame:
        """The rows of one day-and-host partition (billing: day and provider), in the kind's
        columns (or `columns`), sorted as the table sorts."""
        lt = LAKE_TABLES[kind]
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        row_filter = _window(lt, start, start + timedelta(days=1), lt.identity[0], host)
        return self._read(kind, row_filter, columns)

    def raw_for(self, host: str, hour: datetime, kind: str = "gpu_samples") -> pl.DataFrame:
        """Raw rows of `host` in the hour starting at `hour` (the drill-down page's read)."""
        start = hour.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        lt = LAKE_TABLES[kind]
        row_filter = _window(lt, start, start + timedelta(hours=1), "host", host)
        return self._read(kind, row_filter, None)

    def _existing(self, kind: str) -> Table | None:
        """The table of `kind` if it exists (refreshed); readers never create one."""
        from pyiceberg.exceptions import NoSuchTableError

        if kind in self._tables:
            return self.table(kind)
        if kind not in LAKE_TABLES:
            raise LakeError(f"not a lake table: {kind!r} (tables: {', '.join(LAKE_TABLES)})")
        try:
            self._tables[kind] = self.catalog.load_table(f"{self.namespace}.{kind}")
        except NoSuchTableError:
            return None
        return self._tables[kind]

    def _read(self, kind: str, row_filter: Any, columns: Sequence[str] | None) -> pl.DataFrame:
        schema = SCHEMAS[kind]
        cols = tuple(columns) if columns else tuple(schema)
        unknown = [c for c in cols if c not in schema]
        if unknown:
            raise LakeError(f"{kind} has no column {unknown[0]!r}")
        table = self._existing(kind)
        if table is None or table.current_snapshot() is None:
            return pl.DataFrame(schema={c: schema[c] for c in cols})
        arrow = table.scan(row_filter=row_filter, selected_fields=cols).to_arrow()
        frame = pl.from_arrow(arrow)
        assert isinstance(frame, pl.DataFrame)
        sort = [c for c in LAKE_TABLES[kind].sort if c in cols]
        frame = frame.select([pl.col(c).cast(schema[c]) for c in cols])
        return frame.sort(sort, nulls_last=True) if sort else frame

    def row_count(self, kind: str) -> int:
        """Rows of the table's current snapshot (its summary's total-records)."""
        current = self.table(kind).current_snapshot()
        if current is None or current.summary is None:
            return 0
        return int(current.summary.additional_properties.get("total-records", 0))

    # Maintenance: Iceberg's retention and compaction -------------------------------------------
    def maintain(
        self,
        *,
        now: datetime,
        snapshot_days: int,
        compact_min_files: int,
        orphan_grace: timedelta = ORPHAN_GRACE,
    ) -> MaintenanceResult:
        """Expire snapshots older than `snapshot_days` (their spool keys folded into the ledger
        first), rewrite each partition holding `compact_min_files` data files or more as one
        file in one commit, and remove data files no snapshot references that are older than
        `orphan_grace` (a crashed committer's, or those compaction replaced)."""
        result = MaintenanceResult()
        for kind in LAKE_TABLES:
            self.compact(kind, compact_min_files, result)
            self.expire(kind, now - timedelta(days=snapshot_days), result)
            self.remove_orphans(kind, now - orphan_grace, result)
        return result

    def expire(self, kind: str, before: datetime, result: MaintenanceResult) -> None:
        """Expire the snapshots of `kind` made before `before` (never the current one)."""
        from pyiceberg.exceptions import CommitFailedException

        for _ in range(MAX_ATTEMPTS):
            table = self.table(kind)
            current = table.current_snapshot()
            cutoff = int(before.timestamp() * 1000)
            old = [
                s
                for s in table.snapshots()
                if s.timestamp_ms < cutoff
                and (current is None or s.snapshot_id != current.snapshot_id)
            ]
            if not old:
                return
            keys = [(k, s.snapshot_id) for s in old for k in self._snapshot_keys(s)]
            self._fold(kind, keys)
            try:
                table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in old]).commit()
            except CommitFailedException:
                continue
            result.expired_snapshots += len(old)
            result.folded_keys += len(keys)
            return

    def _snapshot_keys(self, snap: Any) -> list[str]:
        value = (
            snap.summary.additional_properties.get(SPOOL_FILES_PROPERTY) if snap.summary else None
        )
        return decode_keys(value) if value else []

    def _fold(self, kind: str, keys: list[tuple[str, int]]) -> None:
        """Append spool keys to the ledger (a key there twice is harmless: it is a set)."""
        from pyiceberg.exceptions import CommitFailedException

        if not keys:
            return
        rows = pa.table(
            {
                "kind": pa.array([kind] * len(keys), pa.large_string()),
                "key": pa.array([k for k, _ in keys], pa.large_string()),
                "snapshot_id": pa.array([s for _, s in keys], pa.int64()),
                "date": pa.array([spool_date(k) for k, _ in keys], pa.large_string()),
            }
        )
        for _ in range(MAX_ATTEMPTS):
            try:
                self._ledger().append(rows)
                return
            except CommitFailedException:
                time.sleep(0.05)
        raise LakeError(f"{LEDGER_TABLE}: the catalog refused {MAX_ATTEMPTS} commits in a row")

    def compact(self, kind: str, min_files: int, result: MaintenanceResult) -> None:
        """Rewrite every partition of `kind` with `min_files` data files or more as one file,
        one commit per partition (a concurrent commit to the table makes it fail and wait for
        the next run; no row is lost either way)."""
        table = self.table(kind)
        if table.current_snapshot() is None:
            return
        groups: dict[tuple, list[Any]] = {}
        for task in table.scan().plan_files():
            groups.setdefault(tuple(task.file.partition._data), []).append(task.file)
        for files in groups.values():
            if len(files) >= min_files and self._rewrite(kind, files):
                result.compacted_partitions += 1
                result.files_in += len(files)
                result.files_out += 1

    def _rewrite(self, kind: str, files: list[Any]) -> bool:
        table = self.table(kind)
        frame = pl.concat(
            [self._read_file(table, f.file_path) for f in files], how="vertical_relaxed"
        )
        paths = self._write_data_files(table, LAKE_TABLES[kind], frame)
        return self._replace_files(table, files, paths, {})

    def remove_orphans(self, kind: str, before: datetime, result: MaintenanceResult) -> None:
        """Delete data files under the table's data/ that no snapshot references, written
        before `before`."""
        from pyarrow.fs import FileSelector, FileType
        from pyiceberg.io.pyarrow import PyArrowFileIO

        table = self.table(kind)
        scheme, netloc, root = PyArrowFileIO.parse_location(f"{table.location()}/data")
        fs = table.io.fs_by_scheme(scheme, netloc)  # type: ignore[attr-defined]
        try:
            infos = fs.get_file_info(FileSelector(root, recursive=True, allow_not_found=True))
        except FileNotFoundError:
            return
        referenced = {
            PyArrowFileIO.parse_location(str(p))[2]
            for p in table.inspect.all_files().column("file_path").to_pylist()
        }
        for info in infos:
            if info.type != FileType.File or info.path in referenced:
                continue
            if info.mtime is not None and info.mtime >= before:
                continue
            fs.delete_file(info.path)
            result.orphans_removed += 1


def maintenance_job(cfg: Config, wh: Any) -> Callable[[], MaintenanceResult | None]:
    """The daemon's `lake` job (cli/jobs.py): `Lake.maintain` on the warehouse's lake with the
    `[lake]` settings, every `[lake] interval_s`."""

    def tick() -> MaintenanceResult | None:
        lake = wh.lake
        if lake is None:
            return None
        result = lake.maintain(
            now=datetime.now(UTC),
            snapshot_days=cfg.lake.snapshot_days,
            compact_min_files=cfg.lake.compact_min_files,
        )
        log.info(result.summary())
        return result

    return tick


def prepare_rows(
    lt: LakeTable, rows: pl.DataFrame, *, quantize: bool, sort: bool = True
) -> list[pl.DataFrame]:
    """Rows as the lake stores them, one frame per partition (day, identity columns): the
    kind's columns, measured values rounded to the resolution compacted spool files keep
    (warehouse/retention.py QUANTA), each partition sorted by the table's sort order (runs of
    equal values compress to nothing) unless `sort` is false (rows in arrival order)."""
    from warehouse.retention import QUANTA

    rows = conform(rows, lt.name)
    if quantize:
        rows = rows.with_columns(
            ((pl.col(c) / q).round(0) * q).alias(c) if q >= 1 else pl.col(c).round(1).alias(c)
            for c, q in QUANTA.get(lt.name, {}).items()
        )
    rows = rows.with_columns(pl.col(lt.time_column).dt.date().alias("_day"))
    if not sort:
        return rows.partition_by(["_day", *lt.identity], maintain_order=True)
    # Text keys sort by their categorical codes (first-seen order): as good for compression as
    # the lexical order, and an integer sort.
    keys = [
        pl.col(c).cast(pl.Categorical).to_physical() if rows.schema[c] == pl.String else pl.col(c)
        for c in ("_day", *lt.identity, *lt.sort)
    ]
    rows = rows.sort(keys, nulls_last=True)
    return rows.partition_by(["_day", *lt.identity], maintain_order=True)


# Column encodings: time delta-encoded, counters byte-split, everything else dictionary + RLE.
PLAIN_COLUMNS = {"ts": "DELTA_BINARY_PACKED", "energy_mj": "BYTE_STREAM_SPLIT"}


def write_data_file(table: Table, path: str, frame: pl.DataFrame) -> None:
    """Write one data file through the table's FileIO (a folder or S3)."""
    arrow = frame.to_arrow()
    arrow = arrow.cast(_arrow_schema(frame))
    encodings = {c: e for c, e in PLAIN_COLUMNS.items() if c in frame.columns}
    out = table.io.new_output(path)
    with out.create(overwrite=True) as stream:
        pq.write_table(
            arrow,
            stream,  # type: ignore[arg-type]
            compression="zstd",
            compression_level=ZSTD_LEVEL,
            use_dictionary=[c for c in frame.columns if c not in encodings],  # type: ignore[arg-type]
            column_encoding=encodings or None,
            row_group_size=ROW_GROUP_ROWS,
        )


def _arrow_schema(frame: pl.DataFrame) -> pa.Schema:
    """Plain string columns (not Polars' string views, which Iceberg readers may not take)."""
    fields = []
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            fields.append(pa.field(name, pa.large_string()))
        else:
            fields.append(pa.field(name, frame[name].to_arrow().type))
    return pa.schema(fields)


def spool_date(key: str) -> str:
    """The spool date (`date=` partition) of a spool key; "" for a key without one."""
    found = spool.parse_batch_path(key)
    return found[0].date if found else ""


def _merged(kind: str, results: list[CommitResult]) -> CommitResult:
    """One CommitResult for several commits of one call."""
    out = CommitResult(kind)
    for r in results:
        out.committed += r.committed
        out.already += r.already
        out.rows += r.rows
        out.data_files += r.data_files
        out.attempts += r.attempts
        out.snapshot_id = r.snapshot_id or out.snapshot_id
    return out


def _pred(name: str, *args: Any) -> Any:
    """A pyiceberg predicate by name (its pydantic constructors confuse the type checker)."""
    import pyiceberg.expressions as expressions

    return getattr(expressions, name)(*args)


def _window(lt: LakeTable, start: datetime, end: datetime, column: str, value: str) -> Any:
    """Rows with `lt`'s time in [start, end) and `column` = `value`."""
    t = lt.time_column
    return _pred(
        "And",
        _pred(
            "And",
            _pred("GreaterThanOrEqual", t, start.isoformat()),
            _pred("LessThan", t, end.isoformat()),
        ),
        _pred("EqualTo", column, value),
    )


def _empty_arrow(table: Table) -> pa.Table:
    return table.schema().as_arrow().empty_table()
