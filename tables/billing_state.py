"""The tables of the billing pulls' own small file (`billing_state.duckdb`, warehouse/
billing_state.py): what the AWS pulls remember between runs. A cache, never the truth."""

from __future__ import annotations

import polars as pl

from tables.columns import UTC_TS, Column, Table, key_value_table

_S = pl.String()
_B = pl.Boolean()
_D = pl.Date()

STATE_META = key_value_table("meta", "state_version and the times of the last pulls")
CE_DAYS = Table(
    "ce_days",
    (
        Column("account", _S, "", "the AWS account pulled"),
        Column("day", _D, "", "a day Cost Explorer answered for"),
        Column("estimated", _B, "", "AWS still called the day Estimated"),
        Column("with_resources", _B, "", "pulled with resource ids (the last 14 days)"),
        Column("pulled_at", UTC_TS, "", "when it was pulled"),
    ),
    "Cost Explorer days pulled",
    key=("account", "day"),
    primary_key=True,
)
CE_RUNS = Table(
    "ce_runs",
    (
        Column("account", _S, "", "the AWS account pulled"),
        Column("run_at", UTC_TS, "", "when the pull ran"),
        Column("start_day", _D, "", "first day asked for"),
        Column("end_day", _D, "", "day after the last asked for"),
        Column("requests", pl.Int32(), "count", "Cost Explorer requests made (each is paid)"),
        Column("rebuild", _B, "", "a month-to-date rebuild"),
        Column("rows", pl.Int64(), "count", "bill lines it gave"),
    ),
    "every Cost Explorer run with its request count",
)
EXPORT_OBJECTS = Table(
    "export_objects",
    (
        Column("bucket", _S, "", "the export's S3 bucket"),
        Column("key", _S, "", "the object's key"),
        Column("period", _S, "", "the billing period it belongs to"),
        Column("etag", _S, "", "its ETag when taken"),
        Column("size", pl.Int64(), "bytes", "its size in bytes"),
        Column("taken_at", UTC_TS, "", "when it was taken"),
    ),
    "the export objects taken, with their ETag",
    key=("bucket", "key"),
    primary_key=True,
)

BILLING_STATE_TABLES: dict[str, Table] = {
    t.name: t for t in (STATE_META, CE_DAYS, CE_RUNS, EXPORT_OBJECTS)
}
