import csv
import gzip
from collections import defaultdict
from pathlib import Path

import polars as pl
import pytest

from collectors.billing.focus import read_focus_file
from collectors.errors import InputError

SAMPLE = Path(__file__).resolve().parents[2] / "fixtures/realdata/focus-sample-1.0/focus_sample.csv"


def independent_totals(path: Path) -> dict[str, tuple[float, float, int]]:
    """Per provider (EffectiveCost, BilledCost, rows), summed with the csv module."""
    out: dict[str, list] = defaultdict(lambda: [0.0, 0.0, 0])
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            t = out[row["ProviderName"]]
            t[0] += float(row["EffectiveCost"])
            t[1] += float(row["BilledCost"])
            t[2] += 1
    return {k: tuple(v) for k, v in out.items()}


def test_the_real_focus_sample_reads_with_the_right_totals():
    f = read_focus_file(SAMPLE)
    want = independent_totals(SAMPLE)
    got = {
        r["ProviderName"]: r
        for r in f.group_by("ProviderName")
        .agg(
            e=pl.col("EffectiveCost").sum(),
            b=pl.col("BilledCost").sum(),
            n=pl.len(),
        )
        .iter_rows(named=True)
    }
    assert set(got) == set(want) == {"AWS", "Microsoft", "Oracle"}
    for provider, (eff, billed, n) in want.items():
        assert got[provider]["e"] == pytest.approx(eff, abs=1e-9)
        assert got[provider]["b"] == pytest.approx(billed, abs=1e-9)
        assert got[provider]["n"] == n


def test_nulls_credits_and_tags_of_the_real_sample():
    f = read_focus_file(SAMPLE)
    assert f["ResourceId"].null_count() == 75  # the text NULL became a null
    credits = f.filter(f["ChargeCategory"] == "Credit")
    assert credits.height == 1 and credits["BilledCost"][0] < 0  # negative is legal
    assert f["Tags"].null_count() == 289
    assert f["scope"].n_unique() == 4  # provider x account x billing period


def test_the_workload_tag_is_read(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text(
        "BilledCost,EffectiveCost,BillingCurrency,BillingAccountId,BillingPeriodStart,"
        "ChargePeriodStart,ChargePeriodEnd,ProviderName,Tags\n"
        "1,1,USD,a,2026-11-01,2026-11-02 00:00:00,2026-11-02 01:00:00,AWS,"
        '"{""team"": ""x"", ""user:workload"": ""llm""}"\n'
        "2,2,USD,a,2026-11-01,2026-11-02 00:00:00,2026-11-02 01:00:00,AWS,NULL\n"
    )
    assert read_focus_file(p)["workload"].to_list() == ["llm", None]


def test_gzip_csv_is_read_and_truncated_gzip_refused(tmp_path):
    data = SAMPLE.read_bytes()
    good = tmp_path / "f.csv.gz"
    good.write_bytes(gzip.compress(data))
    assert read_focus_file(good).height == 1000
    bad = tmp_path / "t.csv.gz"
    bad.write_bytes(gzip.compress(data)[:5000])
    with pytest.raises(InputError, match="truncated or corrupt gzip"):
        read_focus_file(bad)


def _mutated(tmp_path: Path, fn) -> Path:
    rows = list(csv.reader(SAMPLE.open(newline="", encoding="utf-8")))
    fn(rows)
    p = tmp_path / "bad.csv"
    with p.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return p


def test_a_missing_required_column_is_refused(tmp_path):
    def drop(rows):
        i = rows[0].index("EffectiveCost")
        for r in rows:
            del r[i]

    with pytest.raises(
        InputError, match=r"bad.csv: missing required FOCUS column\(s\): EffectiveCost"
    ):
        read_focus_file(_mutated(tmp_path, drop))


def test_a_non_numeric_cost_names_row_and_column(tmp_path):
    def corrupt(rows):
        rows[7][rows[0].index("BilledCost")] = "12,50 USD"

    with pytest.raises(
        InputError, match=r"bad.csv: row 8, column BilledCost: '12,50 USD' is not a number"
    ):
        read_focus_file(_mutated(tmp_path, corrupt))


def test_two_currencies_in_one_billing_account_are_refused(tmp_path):
    def eur(rows):
        rows[10][rows[0].index("BillingCurrency")] = "EUR"

    with pytest.raises(
        InputError,
        match=r"row 11, column BillingCurrency: billing account '1234567890123' has two currencies",
    ):
        read_focus_file(_mutated(tmp_path, eur))


def test_a_file_that_is_not_focus_says_so(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="is this a FOCUS file"):
        read_focus_file(p)
