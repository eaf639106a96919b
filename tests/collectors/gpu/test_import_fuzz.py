"""Hypothesis fuzzing of the two importers users feed by hand: any file either imports (and then
in the documented shape) or raises InputError naming the file, never another exception.

Files are built from the columns the importers know, shuffled, dropped and duplicated, filled
with tricky cells (numbers in every notation, infinities, NaN, null spellings, dates in many
formats, quotes, separators, line breaks, Unicode), written as CSV in several encodings, gzip'd
or truncated, or as Parquet with random column types.

`make test` runs a fixed set of examples (derandomized, so the suite is repeatable);
GPULEDGER_FUZZ_EXAMPLES=5000 (say) hunts with fresh random ones. Bugs found that way get a file in
tests/corpus/ (known bug) until they are fixed.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.billing.focus import read_focus_file
from collectors.errors import InputError
from collectors.gpu.samples_file import read_samples_file
from tables.records import BILLING_SCHEMA, GPU_SAMPLE_SCHEMA

EXAMPLES = int(os.environ.get("GPULEDGER_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize="GPULEDGER_FUZZ_EXAMPLES" not in os.environ,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SAMPLE_COLUMNS = [
    "ts", "host", "gpu_uuid", "gpu_model", "util_pct", "mem_used_mib", "mem_total_mib",
    "power_w", "gpu_index", "sm_active_pct", "workload", "activity_kind", "energy_mj",
]  # fmt: skip
FOCUS_COLUMNS = [
    "BilledCost", "EffectiveCost", "ListCost", "BillingCurrency", "BillingAccountId",
    "BillingPeriodStart", "ChargePeriodStart", "ChargePeriodEnd", "ProviderName",
    "ServiceName", "ResourceId", "SkuId", "ChargeCategory", "PricingUnit", "PricingQuantity",
    "RegionId", "Tags", "ChargeDescription", "x_UsageType",
]  # fmt: skip

CELLS = st.one_of(
    st.sampled_from(
        [
            "",
            "NULL",
            "null",
            "N/A",
            "[N/A]",
            "0",
            "-0",
            "1",
            "50",
            "100",
            "101",
            "-1",
            "1e308",
            "1e400",
            "-1e400",
            "inf",
            "-inf",
            "NaN",
            "nan",
            "0x10",
            "1_000",
            "1,5",
            "12.34",
            " 7 ",
            "+3",
            "2026-03-02T08:00:00+00:00",
            "2026-03-02T08:00:00Z",
            "2026-03-02 08:00:00",
            "2026-03-02",
            "2026-13-45T99:99:99+00:00",
            "1767225600",
            "1767225600.5",
            "-62135596800",
            "1e20",
            "yesterday",
            "{}",
            '{"workload": "a"}',
            '{"workload": null}',
            "[1,2]",
            "{not json",
            "USD",
            "EUR",
            "gpm",
            "dcgm",
            "nvml_util",
            "H100",
            "GPU-aaaa",
            "node-1",
            "=cmd|' /C calc'!A0",
            "'; DROP TABLE x; --",
            "<script>",
            "训练",
            "\u202e",
            "a\nb",
            'quo"te',
            "comma,inside",
            "\x00",
            "arn:aws:ec2:us-east-1:1:instance/i-0abc",
            "p5.48xlarge",
            "Usage",
        ]
    ),  # fmt: skip
    st.text(max_size=12),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def quote(cell: str) -> str:
    if any(c in cell for c in ',"\n\r'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def csv_file(draw: st.DrawFn, known: list[str]) -> tuple[bytes, str]:
    columns = draw(st.lists(st.sampled_from([*known, "extra", ""]), min_size=1, max_size=16))
    if draw(st.booleans()):  # most files hold every known column, in some order
        columns = draw(st.permutations(known)) + columns[: draw(st.integers(0, 2))]
    rows = draw(st.lists(st.lists(CELLS, min_size=len(columns), max_size=len(columns)), max_size=6))
    lines = [",".join(quote(c) for c in columns)] + [",".join(quote(c) for c in r) for r in rows]
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]))
    data = text.encode(encoding, errors="replace")
    suffix = ".csv"
    if draw(st.booleans()) and draw(st.booleans()):
        data, suffix = gzip.compress(data), ".csv.gz"
    if draw(st.integers(0, 5)) == 0:  # truncated in transit
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return data, suffix


@st.composite
def parquet_file(draw: st.DrawFn, schema: dict[str, pl.DataType]) -> tuple[bytes, str]:
    names = draw(st.lists(st.sampled_from(list(schema)), min_size=1, unique=True))
    n = draw(st.integers(0, 5))
    columns = {}
    for name in names:
        kind = draw(st.sampled_from(["native", "text", "int", "float", "null"]))
        if kind == "native" and schema[name] == pl.Datetime("us", "UTC"):
            values = draw(st.lists(st.datetimes(), min_size=n, max_size=n))
            columns[name] = pl.Series(name, values, pl.Datetime("us")).dt.replace_time_zone(
                draw(st.sampled_from([None, "UTC", "Europe/Paris"]))
            )
        elif kind in ("native", "float"):
            vals = draw(st.lists(st.floats(allow_nan=True), min_size=n, max_size=n))
            columns[name] = pl.Series(name, vals, pl.Float64)
        elif kind == "int":
            vals = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
            columns[name] = pl.Series(name, vals, pl.Int64)
        elif kind == "null":
            columns[name] = pl.Series(name, [None] * n, pl.Null)
        else:
            columns[name] = pl.Series(name, draw(st.lists(CELLS, min_size=n, max_size=n)))
    buf = io.BytesIO()
    pl.DataFrame(columns).write_parquet(buf)
    data = buf.getvalue()
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data) - 1))]
    return data, ".parquet"


def import_or_input_error(reader, data: bytes, suffix: str, schema: dict) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            frame = reader(path)
        except InputError as exc:
            assert str(path) in str(exc)
            return
        assert list(frame.columns) == list(schema)
        assert frame.height > 0


@FUZZ
@given(st.one_of(csv_file(SAMPLE_COLUMNS), parquet_file(GPU_SAMPLE_SCHEMA)))
def test_any_samples_file_imports_or_raises_input_error(case: tuple[bytes, str]) -> None:
    import_or_input_error(read_samples_file, *case, GPU_SAMPLE_SCHEMA)


@FUZZ
@given(st.one_of(csv_file(FOCUS_COLUMNS), parquet_file(BILLING_SCHEMA)))
def test_any_focus_file_imports_or_raises_input_error(case: tuple[bytes, str]) -> None:
    import_or_input_error(read_focus_file, *case, BILLING_SCHEMA)
