import re
from pathlib import Path

import polars as pl
import pytest

from config.catalog import CatalogError, load_catalog

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "catalog.csv"


def test_the_shipped_catalog_holds_the_agreed_prices():
    cat = load_catalog(SHIPPED)
    od = dict(
        cat.filter(pl.col("kind") == "instance")
        .select("name", "on_demand_usd_per_hour")
        .iter_rows()
    )
    assert od["p5.48xlarge"] == 55.04
    assert od["p4d.24xlarge"] == 21.96
    assert od["p4de.24xlarge"] == 27.45
    assert od["g6e.12xlarge"] == 10.49
    assert od["g5.xlarge"] == 1.006
    assert od["g6.xlarge"] == 0.8048
    assert od["g4dn.xlarge"] == 0.526
    buy = dict(
        cat.filter(pl.col("kind") == "gpu").select("name", "purchase_usd_per_gpu").iter_rows()
    )
    assert (buy["H100"], buy["A100-80GB"], buy["L40S"], buy["RTX 4090"], buy["RTX 5090"]) == (
        30000,
        12000,
        8000,
        1599,
        1999,
    )
    notes = dict(cat.select("name", "notes").iter_rows())
    assert "estimate" in notes["H100"]
    assert cat["source"].null_count() == 0 and cat["as_of"].null_count() == 0


# Every NVIDIA data-centre class a team meets today and the common workstation cards (issue 11).
CLASSES = {
    "V100-16GB", "V100-32GB", "T4", "A10G", "L4", "L40S", "A100-40GB", "A100-80GB", "H100",
    "H200", "B200", "GH200", "RTX 4090", "RTX 5090", "RTX 6000 Ada", "RTX A6000", "RTX 3090",
    "RTX PRO 6000 Blackwell", "RTX 4080 SUPER", "RTX 2080 SUPER", "GTX 1050",
}  # fmt: skip
INSTANCES = {
    "p3.2xlarge": ("V100-16GB", 1), "p3.8xlarge": ("V100-16GB", 4),
    "p3.16xlarge": ("V100-16GB", 8), "p3dn.24xlarge": ("V100-32GB", 8),
    "g4dn.xlarge": ("T4", 1), "g4dn.12xlarge": ("T4", 4),
    "g5.xlarge": ("A10G", 1), "g5.12xlarge": ("A10G", 4), "g5.48xlarge": ("A10G", 8),
    "g6.xlarge": ("L4", 1), "g6.12xlarge": ("L4", 4),
    "g6e.xlarge": ("L40S", 1), "g6e.12xlarge": ("L40S", 4), "g6e.48xlarge": ("L40S", 8),
    "p4d.24xlarge": ("A100-40GB", 8), "p4de.24xlarge": ("A100-80GB", 8),
    "p5.4xlarge": ("H100", 1), "p5.48xlarge": ("H100", 8),
    "p5e.48xlarge": ("H200", 8), "p5en.48xlarge": ("H200", 8),
    "p6-b200.48xlarge": ("B200", 8),
}  # fmt: skip


def test_the_catalog_covers_the_classes_and_instances_a_team_meets():
    cat = load_catalog(SHIPPED)
    gpus = cat.filter(pl.col("kind") == "gpu")
    assert set(gpus["name"]) == CLASSES
    assert (gpus["name"] == gpus["gpu_model"]).all()
    inst = cat.filter(pl.col("kind") == "instance")
    assert {n: (m, c) for n, m, c in inst.select("name", "gpu_model", "gpu_count").iter_rows()} == (
        INSTANCES
    )
    assert set(inst["region"]) == {"us-east-1"} and set(inst["provider"]) == {"aws"}


def test_every_price_is_sourced_dated_and_estimates_say_so():
    """A class without a purchase price says why; every spot price and every class price not
    read from a price list says 'estimate' in its notes; p5e has no on-demand price in the
    AWS price list and says so."""
    cat = load_catalog(SHIPPED)
    gpus = cat.filter(pl.col("kind") == "gpu")
    unpriced = gpus.filter(pl.col("purchase_usd_per_gpu").is_null())
    assert set(unpriced["name"]) == {"A10G", "GH200", "RTX PRO 6000 Blackwell"}
    assert all("purchase price" in n for n in unpriced["notes"])  # each says why it has none
    priced = gpus.filter(pl.col("purchase_usd_per_gpu").is_not_null())
    assert all(
        ("estimate" in n) or ("MSRP" in s) for n, s in priced.select("notes", "source").iter_rows()
    )
    spot = cat.filter(pl.col("spot_usd_per_hour").is_not_null())
    assert spot.height >= 17 and all("spot" in n for n in spot["notes"])
    inst = cat.filter(pl.col("kind") == "instance")
    no_od = inst.filter(pl.col("on_demand_usd_per_hour").is_null())
    assert set(no_od["name"]) == {"p5e.48xlarge"} and "no on-demand price" in no_od["notes"][0]
    both = inst.filter(pl.col("spot_usd_per_hour").is_not_null())
    assert (both["spot_usd_per_hour"] < both["on_demand_usd_per_hour"]).all()


def test_cards_no_longer_sold_keep_a_price_for_the_ones_a_team_owns():
    cat = load_catalog(SHIPPED).filter(pl.col("kind") == "gpu")
    not_sold = cat.filter(pl.col("for_sale") == False)  # noqa: E712 (a Polars expression)
    assert set(not_sold["name"]) == {
        "V100-16GB", "V100-32GB", "A100-40GB", "RTX 4080 SUPER", "RTX 3090", "RTX 2080 SUPER",
        "GTX 1050",
    }  # fmt: skip
    assert not_sold["purchase_usd_per_gpu"].null_count() == 0


def test_every_instance_gpu_model_is_a_gpu_class():
    cat = load_catalog(SHIPPED)
    classes = set(cat.filter(pl.col("kind") == "gpu")["gpu_model"])
    assert set(cat.filter(pl.col("kind") == "instance")["gpu_model"]) <= classes


def _with_line(tmp_path, change) -> Path:
    """A copy of the shipped catalog with `change(lines)` applied."""
    lines = SHIPPED.read_text().splitlines()
    change(lines)
    bad = tmp_path / "catalog.csv"
    bad.write_text("\n".join(lines) + "\n")
    return bad


def _row_of(name: str) -> int:
    """The 0-based line index of a row by its name (line 0 is the header = row 1)."""
    return next(i for i, line in enumerate(SHIPPED.read_text().splitlines()) if f",{name}," in line)


def test_a_bad_price_names_row_and_column(tmp_path):
    i = _row_of("H100")

    def change(lines):
        lines[i] = lines[i].replace(",30000,", ",thirty,")

    with pytest.raises(CatalogError, match=rf"row {i + 1}, column purchase_usd_per_gpu: 'thirty'"):
        load_catalog(_with_line(tmp_path, change))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        # an alias on an instance row
        (
            "instance,x.large,aws,us-east-1,T4,1,16,0.21,false,1.0,,,,src,2026-01-01,,Tesla T4",
            "column aliases: only gpu rows (GPU classes) take aliases",
        ),
        # an instance of a GPU no class describes
        (
            "instance,x.large,aws,us-east-1,A3000,1,16,0.21,false,1.0,,,,src,2026-01-01,,",
            "column gpu_model: 'A3000' is not a GPU class of the catalog",
        ),
        # an alias that makes "Tesla T4" answer to two classes of the same memory
        (
            "gpu,T4 spare,,,T4 spare,1,16,0.21,false,,,1000,true,src,2026-01-01,,Tesla T4",
            "column aliases: 'T4 spare' answers to 'T4' like class 'T4'",
        ),
        # an alias with nothing left once brand words are dropped
        (
            "gpu,Mystery,,,Mystery,1,16,0.21,false,,,1000,true,src,2026-01-01,,NVIDIA",
            "column aliases: 'Mystery': an alias names no chip",
        ),
    ],
)
def test_class_names_are_checked_at_load_naming_row_and_column(tmp_path, line, message):
    rows = len(SHIPPED.read_text().splitlines())
    with pytest.raises(CatalogError, match=rf"row {rows + 1}, {re.escape(message)}"):
        load_catalog(_with_line(tmp_path, lambda lines: lines.append(line)))


def test_a_catalog_without_the_optional_columns_still_loads(tmp_path):
    """Catalogs from before `for_sale` and `aliases` read them as empty."""
    frame = pl.read_csv(SHIPPED, infer_schema=False).drop("for_sale", "aliases")
    old = tmp_path / "catalog.csv"
    frame.write_csv(old)
    cat = load_catalog(old)
    assert cat["aliases"].null_count() == cat.height and cat["for_sale"].null_count() == cat.height


def test_a_missing_column_is_named(tmp_path):
    bad = tmp_path / "catalog.csv"
    bad.write_text("kind,name\ngpu,H100\n")
    with pytest.raises(CatalogError, match="missing column"):
        load_catalog(bad)
