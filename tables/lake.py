"""The lake's tables: the spool kinds as Apache Iceberg tables (DESIGN.md §1 "Past one machine").

Each lake table is a record definition of `tables/records.py` (its columns, types and meaning,
written once) with how the lake partitions and sorts it. `iceberg_schema` and `partition_spec`
generate the Iceberg shapes from those definitions, so Athena, Trino, Spark and DuckDB see the
same columns the warehouse and the spool have (docs/multi-host.md).

Field ids are the column's position (1-based) in its definition; a column added to a record at
the end gets the next id, so an Iceberg schema evolution by name keeps old files readable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from tables.columns import UTC_TS, Table
from tables.records import BILLING_ITEMS, GPU_SAMPLES, HEALTH, PROCESS_SAMPLES

if TYPE_CHECKING:  # pyiceberg is imported only where the lake is used
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema

# The namespace (Glue: database) the tables live in unless [lake] namespace says otherwise.
DEFAULT_NAMESPACE = "gpuledger"
# Snapshot summary property that lists the spool files a commit took (zlib + base64 of a JSON
# list of spool keys): written in the same atomic catalog commit as the data files.
SPOOL_FILES_PROPERTY = "gpuledger.spool-files"
# Partition field ids start here (Iceberg's convention: above every column id).
PARTITION_FIELD_BASE = 1000


@dataclass(frozen=True)
class LakeTable:
    """One lake table: the record it stores, its time column (partitioned by day), the columns
    partitioned by identity after the day, the sort order within a data file, and its replace
    key, if any."""

    record: Table
    time_column: str
    identity: tuple[str, ...]
    sort: tuple[str, ...]
    # A column whose values a later batch replaces whole (bills: `scope`, a restated period):
    # such a commit deletes the table's rows of the batch's values and appends it, atomically.
    replace_key: str | None = None

    @property
    def name(self) -> str:
        return self.record.name


LAKE_TABLES: dict[str, LakeTable] = {
    t.name: t
    for t in (
        LakeTable(GPU_SAMPLES, "ts", ("host",), ("gpu_uuid", "ts")),
        LakeTable(PROCESS_SAMPLES, "ts", ("host",), ("gpu_uuid", "pid", "ts")),
        LakeTable(HEALTH, "ts", ("host",), ("gpu_uuid", "ts", "kind")),
        LakeTable(
            BILLING_ITEMS,
            "ChargePeriodStart",
            ("ProviderName", "BillingAccountId"),
            ("ResourceId", "ChargePeriodStart"),
            replace_key="scope",
        ),
    )
}


def _iceberg_type(dtype: pl.DataType):
    from pyiceberg.types import DoubleType, IntegerType, LongType, StringType, TimestamptzType

    types = {
        UTC_TS: TimestamptzType(),
        pl.String(): StringType(),
        pl.Float64(): DoubleType(),
        pl.Int32(): IntegerType(),
        pl.Int64(): LongType(),
    }
    try:
        return types[dtype]
    except KeyError:
        raise TypeError(f"no Iceberg type for Polars {dtype!r}") from None


def iceberg_schema(table: LakeTable) -> Schema:
    """The Iceberg schema of a lake table: every column optional, ids by position."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    return Schema(
        *(
            NestedField(i, c.name, _iceberg_type(c.dtype), required=False, doc=c.meaning)
            for i, c in enumerate(table.record.columns, start=1)
        )
    )


def partition_spec(table: LakeTable) -> PartitionSpec:
    """Day of the time column, then each identity column (host; billing: provider, account)."""
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import DayTransform, IdentityTransform

    ids = {c.name: i for i, c in enumerate(table.record.columns, start=1)}
    fields = [
        PartitionField(ids[table.time_column], PARTITION_FIELD_BASE, DayTransform(), "day"),
        *(
            PartitionField(ids[c], PARTITION_FIELD_BASE + 1 + i, IdentityTransform(), c)
            for i, c in enumerate(table.identity)
        ),
    ]
    return PartitionSpec(*fields)
