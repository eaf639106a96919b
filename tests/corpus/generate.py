"""Writes the bad-input corpus next to this file (run once; the files are committed):

    .venv/bin/python tests/corpus/generate.py

Each file and what `gpuledger import` must do with it is listed in README.md, which
tests/corpus/test_corpus.py reads.
"""

from __future__ import annotations

import gzip
import io
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
    write(
        f / "focus_sql_injection.csv",
        focus(
            focus_row(
                BillingAccountId="1'; DROP TABLE billing_items; --",
                tags='"{""workload"": ""\'; DROP TABLE gpu_minute; --""}"',
            ),
        ),
    )


if __name__ == "__main__":
    main()
