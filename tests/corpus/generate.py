"""Writes the bad-input corpus next to this file (run once; the files are committed):

    .venv/bin/python tests/corpus/generate.py

Each file and what `gpuledger import` must do with it is listed in README.md, which
tests/corpus/test_corpus.py reads.
"""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "samples"
FOCUS = HERE / "focus"

HEADER = "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload"
GOOD = [
    "2026-03-02T08:00:00+00:00,node-1,GPU-aaaa,H100,50,1000,81559,300,train",
    "2026-03-02T08:00:10+00:00,node-1,GPU-aaaa,H100,55,1000,81559,310,train",
    "2026-03-02T08:00:20+00:00,node-1,GPU-aaaa,H100,60,1000,81559,320,train",
]


def csv(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def row(**over: str) -> str:
    base = dict(zip(HEADER.split(","), GOOD[1].split(","), strict=True))
    base.update(over)
    return ",".join(base.values())


def good_frame() -> pl.DataFrame:
    return pl.read_csv(io.StringIO(csv(*GOOD)), infer_schema=False)


FOCUS_HEADER = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,BillingPeriodStart,"
    "ChargePeriodStart,ChargePeriodEnd,ProviderName,ServiceName,ResourceId,ChargeCategory,Tags"
)
FOCUS_GOOD = [
    "10.5,10.5,12.0,USD,111122223333,2026-03-01T00:00:00Z,2026-03-02T00:00:00Z,"
    '2026-03-02T01:00:00Z,AWS,Amazon EC2,i-0abc,Usage,"{""workload"": ""train""}"',
    "11.5,11.5,12.0,USD,111122223333,2026-03-01T00:00:00Z,2026-03-02T01:00:00Z,"
    '2026-03-02T02:00:00Z,AWS,Amazon EC2,i-0abc,Usage,"{""workload"": ""train""}"',
]


def focus(*rows: str, header: str = FOCUS_HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def focus_row(cost: str = "10.5", tags: str = '"{""workload"": ""train""}"', **over: str) -> str:
    cols = FOCUS_HEADER.split(",")
    values = dict(zip(cols, FOCUS_GOOD[0].split(",")[: len(cols) - 1] + [tags], strict=True))
    values["BilledCost"] = values["EffectiveCost"] = cost
    values.update(over)
    return ",".join(values.values())


def write(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)


def main() -> None:
    s = SAMPLES
    whole = csv(*GOOD)
    write(s / "truncated_mid_row.csv", whole[: whole.rindex(",3")])  # last row cut
    parquet = io.BytesIO()
    good_frame().write_parquet(parquet)
    write(s / "truncated.parquet", parquet.getvalue()[:-40])
    write(s / "empty.csv", b"")
    write(s / "header_only.csv", HEADER + "\n")
    write(
        s / "missing_power_column.csv",
        csv(
            *[",".join(r.split(",")[:7] + r.split(",")[8:]) for r in GOOD],
            header=HEADER.replace(",power_w", ""),
        ),
    )
    write(s / "util_is_text.csv", csv(GOOD[0], row(util_pct="high")))
    write(s / "util_over_100.csv", csv(GOOD[0], GOOD[1], row(util_pct="150")))
    write(s / "negative_power.csv", csv(GOOD[0], row(power_w="-5")))
    write(s / "power_infinite.csv", csv(GOOD[0], row(power_w="1e400")))
    write(s / "mem_huge.csv", csv(GOOD[0], row(mem_used_mib="1e308", mem_total_mib="1e308")))
    write(s / "util_nan.csv", csv(GOOD[0], row(util_pct="NaN")))
    write(s / "bad_timestamp.csv", csv(GOOD[0], row(ts="yesterday")))
    write(s / "timestamp_without_offset.csv", csv(row(ts="2026-03-02T08:00:00")))
    write(s / "epoch_overflow.csv", csv(GOOD[0], row(ts="1e20")))
    write(s / "mem_used_over_total.csv", csv(GOOD[0], row(mem_used_mib="90000")))
    write(s / "latin1.csv", csv(GOOD[0], row(workload="équipe-vision")).encode("latin-1"))
    write(s / "utf16.csv", csv(*GOOD).encode("utf-16"))
    write(s / "binary_garbage.csv", bytes(range(256)) * 8)
    write(
        s / "semicolons.csv",
        csv(*[r.replace(",", ";") for r in GOOD], header=HEADER.replace(",", ";")),
    )
    write(s / "duplicate_column.csv", csv(*[r + ",51" for r in GOOD], header=HEADER + ",util_pct"))
    write(s / "gzip_truncated.csv.gz", gzip.compress(whole.encode())[:-12])
    write(s / "null_byte_in_host.csv", csv(GOOD[0], row(host="node\x001")))
    wrong = good_frame().with_columns(pl.lit("abc").alias("util_pct"))
    buf = io.BytesIO()
    wrong.write_parquet(buf)
    write(s / "parquet_util_text.parquet", buf.getvalue())
    far = good_frame().with_columns(pl.lit(9.3e18).alias("ts"))  # epoch seconds past int64 µs
    buf = io.BytesIO()
    far.write_parquet(buf)
    write(s / "parquet_epoch_out_of_range.parquet", buf.getvalue())
    naive = good_frame().with_columns(pl.col("ts").str.slice(0, 19).str.to_datetime())
    buf = io.BytesIO()
    naive.write_parquet(buf)
    write(s / "parquet_naive_time.parquet", buf.getvalue())
    # Handled right: stored verbatim, never executed or interpreted.
    write(s / "utf8_bom.csv", "\ufeff" + whole)
    write(
        s / "formula_injection.csv",
        csv(
            row(workload="=cmd|' /C calc'!A0"),
            row(
                ts="2026-03-02T08:00:20+00:00",
                workload="+SUM(1+1)*cmd|' /C calc'!A0",
                host="@node-1",
            ),
            row(
                ts="2026-03-02T08:00:30+00:00",
                workload='"=HYPERLINK(""http://evil.example"",""x"")"',
            ),
        ),
    )
    write(
        s / "sql_injection_names.csv",
        csv(
            row(workload="'; DROP TABLE gpu_samples; --"),
            row(
                ts="2026-03-02T08:00:20+00:00",
                host="node'); DELETE FROM gpu_minute; --",
                workload="x",
            ),
            row(ts="2026-03-02T08:00:30+00:00", gpu_uuid="GPU-1' OR '1'='1", workload="y"),
        ),
    )
    write(
        s / "html_script_names.csv",
        csv(
            row(workload="<script>alert(1)</script>"),
            row(
                ts="2026-03-02T08:00:20+00:00",
                host="<img src=x onerror=alert(1)>",
                workload="**bold** [link](javascript:alert(1))",
            ),
        ),
    )
    write(
        s / "path_tricks_in_host.csv",
        csv(
            row(host="../../../../etc"),
            row(ts="2026-03-02T08:00:20+00:00", host="/absolute/host", gpu_uuid="GPU-..\\..\\win"),
        ),
    )
    write(
        s / "unicode_names.csv",
        csv(
            row(workload="训练-任务 🚀"),
            row(ts="2026-03-02T08:00:20+00:00", workload="evil\u202etxt.exe", host="nöde-1"),
        ),
    )
    write(s / "newline_in_quoted_workload.csv", csv(row(workload='"line one\nline two"')))
    write(s / "very_long_workload.csv", csv(row(workload="w" * 100_000)))
    for name in ("$(touch pwned).csv", "..csv", "-rf.csv", "name with spaces;rm -rf ~.csv"):
        write(s / name, whole)

    f = FOCUS
    whole_f = focus(*FOCUS_GOOD)
    write(f / "focus_truncated.csv", whole_f[: whole_f.rindex("Usage")])
    write(
        f / "focus_missing_required.csv",
        focus(
            *[",".join(r.split(",")[2:]) for r in FOCUS_GOOD],
            header=",".join(FOCUS_HEADER.split(",")[2:]),
        ),
    )
    write(f / "focus_cost_with_comma.csv", focus(FOCUS_GOOD[0], focus_row(cost='"12,34"')))
    write(f / "focus_cost_infinite.csv", focus(FOCUS_GOOD[0], focus_row(cost="1e400")))
    write(f / "focus_tags_not_json.csv", focus(FOCUS_GOOD[0], focus_row(tags="workload=train")))
    write(f / "focus_tags_json_array.csv", focus(focus_row(tags='"[1, 2]"')))
    write(f / "focus_two_currencies.csv", focus(FOCUS_GOOD[0], focus_row(BillingCurrency="EUR")))
    write(
        f / "focus_latin1.csv", focus(focus_row(ServiceName="Calcul élastique")).encode("latin-1")
    )
    write(f / "focus_gzip_truncated.csv.gz", gzip.compress(whole_f.encode())[:-12])
    write(f / "focus_bad_date.csv", focus(FOCUS_GOOD[0], focus_row(ChargePeriodStart="31/02/2026")))
    far = pl.read_csv(io.StringIO(whole_f), infer_schema=False).with_columns(
        pl.lit(5.7e19).alias("ChargePeriodStart")
    )
    buf = io.BytesIO()
    far.write_parquet(buf)
    write(f / "focus_parquet_epoch_out_of_range.parquet", buf.getvalue())
    write(
        f / "focus_formula_in_tags.csv",
        focus(
            focus_row(tags='"{""workload"": ""=cmd|\' /C calc\'!A0""}"'),
            focus_row(tags='"{""workload"": ""@SUM(A1)""}"', ResourceId="=HYPERLINK(1)"),
        ),
    )
    issue14_samples(s)
    issue14_focus(f)
    write(
        f / "focus_sql_injection.csv",
        focus(
            focus_row(
                BillingAccountId="1'; DROP TABLE billing_items; --",
                tags='"{""workload"": ""\'; DROP TABLE gpu_minute; --""}"',
            ),
        ),
    )


def parquet(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


def typed_frame(**over: object) -> pl.DataFrame:
    """The good rows with typed columns (UTC times, numbers), `over` replacing columns."""
    frame = good_frame().with_columns(
        pl.col("ts").str.to_datetime(time_zone="UTC", time_unit="us"),
        *(pl.col(c).cast(pl.Float64) for c in HEADER.split(",")[4:8]),
    )
    return frame.with_columns(**{k: pl.Series(k, v) for k, v in over.items()})  # type: ignore[arg-type]


def issue14_samples(s: Path) -> None:
    """Samples files of issue 14 (hardening): times that overflow or hide the fleet, empty
    required values, blank lines, oversized values and lines, gzip bombs, nested Parquet."""
    later = "2026-03-02T08:00:30+00:00"
    write(s / "ts_year_9999.csv", csv(GOOD[0], row(ts="9999-12-31T23:59:59+00:00")))
    write(s / "ts_year_0001.csv", csv(GOOD[0], row(ts="0001-01-01T00:00:00+00:00")))
    write(s / "ts_epoch_milliseconds.csv", csv(GOOD[0], row(ts="1772438400000")))
    write(s / "ts_2199.csv", csv(GOOD[0], GOOD[1], row(ts="2199-01-01T00:00:00+00:00")))
    write(s / "ts_1999.csv", csv(row(ts="1999-12-31T23:59:59+00:00")))
    write(s / "ts_empty.csv", csv(GOOD[0], row(ts="")))
    write(s / "power_empty.csv", csv(GOOD[0], row(power_w="")))
    write(s / "mem_total_empty.csv", csv(GOOD[0], GOOD[1], row(ts=later, mem_total_mib="")))
    write(s / "util_empty.csv", csv(GOOD[0], row(util_pct="")))
    write(s / "blank_line_between_rows.csv", csv(GOOD[0], "", GOOD[1]))
    write(s / "only_blank_lines.csv", csv("", "", ""))
    write(s / "field_200000_chars.csv", csv(GOOD[0], row(workload="w" * 200_000)))
    line = HEADER + "\n" + GOOD[0] + "\n" + GOOD[1][:-5] + "x" * (5 << 20) + "\n"
    write(s / "line_of_5_mib.csv.gz", gzip.compress(line.encode(), mtime=0))
    # 70 MB of good rows from 90 kB: past 100 x its size and past 64 MiB
    bomb = (HEADER + "\n" + (GOOD[1] + "\n") * 1_000_000).encode()
    write(s / "gzip_bomb.csv.gz", gzip.compress(bomb, compresslevel=9, mtime=0))
    write(
        s / "tab_separated.csv",
        csv(*[r.replace(",", "\t") for r in GOOD], header=HEADER.replace(",", "\t")),
    )
    lists = typed_frame(workload=[None, ["a", "b"], ["c"]])
    write(s / "parquet_list_column.parquet", parquet(lists))
    structs = typed_frame(util_pct=[{"avg": 1.0}, {"avg": 2.0}, {"avg": 3.0}])
    write(s / "parquet_struct_column.parquet", parquet(structs))
    far = pl.Series([datetime(2026, 3, 2, 8, tzinfo=UTC), datetime(9999, 12, 31, tzinfo=UTC)] * 1)
    write(s / "parquet_ts_9999.parquet", parquet(typed_frame().head(2).with_columns(ts=far)))
    write(
        s / "parquet_ts_null.parquet",
        parquet(
            typed_frame().with_columns(
                ts=pl.Series([datetime(2026, 3, 2, 8, tzinfo=UTC), None, None])
            )
        ),
    )
    write(s / "parquet_power_null.parquet", parquet(typed_frame(power_w=[300.0, 310.0, None])))
    write(
        s / "parquet_field_200000_chars.parquet",
        parquet(typed_frame(workload=["train", "train", "w" * 200_000])),
    )
    # Handled right: stored verbatim.
    write(s / "crlf_line_endings.csv", csv(*GOOD).replace("\n", "\r\n"))
    write(s / "trailing_blank_lines.csv", csv(*GOOD) + "\n\n\n")
    write(
        s / "iso_spellings.csv",
        csv(
            row(ts="2026-03-02T08:00:00Z"),
            row(ts="2026-03-02 09:00:10+01:00"),
            row(ts="2026-03-02T03:00:20.250-05:00"),
            row(ts="2026-03-02T08:00:30+0000"),
            row(ts="1772438440"),
        ),
    )
    write(
        s / "extra_and_reordered_columns.csv",
        "\n".join(
            [
                "workload,power_w,site,ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,rack",
                "train,300,eu-1,2026-03-02T08:00:00+00:00,node-1,GPU-aaaa,H100,50,1000,81559,r1",
                "infer,310,eu-1,2026-03-02T08:00:10+00:00,node-1,GPU-aaaa,H100,55,1000,81559,r1",
            ]
        )
        + "\n",
    )
    write(s / "quoted_numbers.csv", csv(row(util_pct='"55"', power_w='"310.5"')))
    write(
        s / "agent_rows_without_power.csv",
        "\n".join(
            [
                HEADER + ",activity_kind,source",
                GOOD[0] + ",nvml_util,nvml",
                row(ts=later, power_w="") + ",nvml_util,nvml",
            ]
        )
        + "\n",
    )
    write(s / "gzip_ok.csv.gz", gzip.compress(csv(*GOOD).encode(), mtime=0))


def issue14_focus(f: Path) -> None:
    """FOCUS files of issue 14: the record time checked as every import checks it."""
    write(
        f / "focus_charge_start_9999.csv",
        focus(FOCUS_GOOD[0], focus_row(ChargePeriodStart="9999-12-31T00:00:00Z")),
    )
    write(
        f / "focus_charge_start_2199.csv",
        focus(focus_row(ChargePeriodStart="2199-01-01T00:00:00Z")),
    )
    write(f / "focus_charge_start_empty.csv", focus(FOCUS_GOOD[0], focus_row(ChargePeriodStart="")))
    write(
        f / "focus_billing_period_0001.csv",
        focus(FOCUS_GOOD[0], focus_row(BillingPeriodStart="0001-01-01T00:00:00Z")),
    )
    write(
        f / "focus_charge_end_next_month.csv",
        focus(focus_row(ChargePeriodEnd="2026-04-01T00:00:00Z", ResourceId="i-monthly")),
    )


if __name__ == "__main__":
    main()
