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
    "V100-16GB", "V100-32GB", "T4", "A10G", "A10", "L4", "L40S", "A100-40GB", "A100-80GB", "H100",
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
# Azure (issue 16): the NC/ND series with A100, H100, H200, T4 and the whole-A10 NVads size.
AZURE = {
    "Standard_NC24ads_A100_v4": ("A100-80GB", 1), "Standard_NC48ads_A100_v4": ("A100-80GB", 2),
    "Standard_NC96ads_A100_v4": ("A100-80GB", 4), "Standard_ND96asr_v4": ("A100-40GB", 8),
    "Standard_ND96amsr_A100_v4": ("A100-80GB", 8), "Standard_NC40ads_H100_v5": ("H100", 1),
    "Standard_NC80adis_H100_v5": ("H100", 2), "Standard_ND96isr_H100_v5": ("H100", 8),
    "Standard_ND96isr_H200_v5": ("H200", 8), "Standard_NC4as_T4_v3": ("T4", 1),
    "Standard_NC64as_T4_v3": ("T4", 4), "Standard_NV36ads_A10_v5": ("A10", 1),
}  # fmt: skip
# Google Cloud (issue 16): a2 (A100 40 and 80 GB), a3 high and mega (H100),
# a3 ultra (H200), g2 (L4).
GCP = {
    "a2-highgpu-1g": ("A100-40GB", 1), "a2-highgpu-8g": ("A100-40GB", 8),
    "a2-ultragpu-1g": ("A100-80GB", 1), "a2-ultragpu-8g": ("A100-80GB", 8),
    "a3-highgpu-8g": ("H100", 8), "a3-megagpu-8g": ("H100", 8), "a3-ultragpu-8g": ("H200", 8),
    "g2-standard-4": ("L4", 1), "g2-standard-48": ("L4", 4),
}  # fmt: skip


def test_the_catalog_covers_the_classes_and_instances_a_team_meets():
    cat = load_catalog(SHIPPED)
    gpus = cat.filter(pl.col("kind") == "gpu")
    assert set(gpus["name"]) == CLASSES
    assert (gpus["name"] == gpus["gpu_model"]).all()
    inst = cat.filter(pl.col("kind") == "instance")
    assert {n: (m, c) for n, m, c in inst.select("name", "gpu_model", "gpu_count").iter_rows()} == (
        INSTANCES | AZURE | GCP
    )
    by_cloud = {p: set(rows["name"]) for (p,), rows in inst.group_by("provider")}
    assert by_cloud == {"aws": set(INSTANCES), "azure": set(AZURE), "gcp": set(GCP)}
    regions = dict(inst.group_by("provider").agg(pl.col("region").unique().sort()).iter_rows())
    assert regions == {
        "aws": ["us-east-1"],
        "azure": ["eastus"],
        "gcp": ["us-central1", "us-east4"],
    }


def test_every_price_is_sourced_dated_and_estimates_say_so():
    """A class without a purchase price says why; every spot price and every class price not
    read from a price list says 'estimate' in its notes; p5e has no on-demand price in the
    AWS price list and says so."""
    cat = load_catalog(SHIPPED)
    gpus = cat.filter(pl.col("kind") == "gpu")
    unpriced = gpus.filter(pl.col("purchase_usd_per_gpu").is_null())
    assert set(unpriced["name"]) == {"A10G", "A10", "GH200", "RTX PRO 6000 Blackwell"}
    assert all("purchase price" in n for n in unpriced["notes"])  # each says why it has none
    priced = gpus.filter(pl.col("purchase_usd_per_gpu").is_not_null())
    assert all(
        ("estimate" in n) or ("MSRP" in s) for n, s in priced.select("notes", "source").iter_rows()
    )
    spot = cat.filter(pl.col("spot_usd_per_hour").is_not_null())
    assert spot.height >= 17 and all("spot" in n for n in spot["notes"])
    inst = cat.filter(pl.col("kind") == "instance")
    no_od = inst.filter(pl.col("on_demand_usd_per_hour").is_null())
    assert set(no_od["name"]) == {
        "p5e.48xlarge", "Standard_ND96isr_H200_v5", "a2-ultragpu-1g", "a2-ultragpu-8g",
    }  # fmt: skip
    assert all("no on-demand" in n for n in no_od["notes"])
    # every Azure and Google Cloud price is from a catalog snapshot not checked against the
    # provider's own price list: each says it is an estimate
    other = inst.filter(pl.col("provider").is_in(["azure", "gcp"]))
    priced = other.filter(pl.col("on_demand_usd_per_hour").is_not_null())
    assert priced.height == 18 and all("estimate" in n for n in priced["notes"])
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
        # an instance of no known cloud (tables/clouds.py)
        (
            "instance,x.large,oci,us-ashburn-1,T4,1,16,0.21,false,1.0,,,,src,2026-01-01,,",
            "column provider: instances name their cloud, one of aws, azure, gcp (got 'oci')",
        ),
        # an instance type listed twice (bills and alternatives name a machine by type alone)
        (
            "instance,g4dn.xlarge,aws,us-west-2,T4,1,16,0.21,false,0.6,,,,src,2026-01-01,,",
            "column name: instance 'g4dn.xlarge' is listed twice",
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


def test_the_a10_is_a_class_of_its_own_beside_the_a10g():
    """Azure's A10 (72 SMs, 150 W, 125 TFLOPS dense FP16 tensor) is not AWS's A10G (80 SMs,
    300 W, ~70 TFLOPS): both 24 GB, so each answers only to its own name, and the A10's
    relative throughput is 125 / 312 = 0.40 against the A10G's 0.22."""
    from config.gpu_class import GpuClasses

    classes = GpuClasses(load_catalog(SHIPPED))
    assert classes.resolve("NVIDIA A10") == "A10"
    assert classes.resolve("NVIDIA A10-24Q") == "A10"  # the vGPU profile of a whole board
    assert classes.resolve("NVIDIA A10G") == "A10G"
    assert classes.info("A10")["relative_throughput"] == 0.4
    assert classes.info("A10G")["relative_throughput"] == 0.22


def test_catalog_ages_per_cloud_flag_the_stale_ones():
    """Oldest and newest as_of per cloud and for the GPU classes; stale where the oldest is older
    than max_age_days: on 2025-12-01 with 180 days, AWS's oldest (2025-05-01, 214 days) is
    stale, Azure's (2024-10-01) too, GCP's (2025-06-01, 183 days) just so."""
    from datetime import date

    from config.catalog import CLASSES_LABEL, catalog_ages

    ages = {
        r["provider"]: r
        for r in catalog_ages(load_catalog(SHIPPED), date(2025, 12, 1), 180).iter_rows(named=True)
    }
    assert list(ages) == ["aws", "azure", "gcp", CLASSES_LABEL]
    assert ages["aws"]["oldest"] == date(2025, 5, 1) and ages["aws"]["age_days"] == 214
    assert ages["aws"]["newest"] == date(2026, 11, 9)
    assert ages["gcp"]["age_days"] == 183 and ages["gcp"]["stale"]
    assert ages["azure"]["rows"] == 12 and ages["azure"]["stale"]
    fresh = catalog_ages(load_catalog(SHIPPED), date(2025, 6, 1), 3650)
    assert not fresh["stale"].any()


def test_reserved_prices_are_instance_columns_marked_as_estimates(tmp_path):
    """AWS instances carry 1- and 3-year No Upfront prices (estimates: on-demand × 0.70 and
    × 0.50, their notes say so); a GPU class with a reserved price is refused, naming the row."""
    cat = load_catalog(SHIPPED)
    p4d = cat.filter(pl.col("name") == "p4d.24xlarge").row(0, named=True)
    assert p4d["reserved_1y_usd_per_hour"] == pytest.approx(21.96 * 0.70)  # $15.372
    assert p4d["reserved_3y_usd_per_hour"] == pytest.approx(21.96 * 0.50)  # $10.98
    reserved = cat.filter(pl.col("reserved_1y_usd_per_hour").is_not_null())
    assert set(reserved["provider"]) == {"aws"}
    assert reserved["notes"].str.contains("reserved prices are estimates").all()
    rows = len(SHIPPED.read_text().splitlines())
    line = "gpu,T4 again,,,T4 again,1,16,0.21,false,,,1000,true,src,2026-01-01,,,0.5,"
    with pytest.raises(CatalogError, match=rf"row {rows + 1}, column reserved_1y_usd_per_hour"):
        load_catalog(_with_line(tmp_path, lambda lines: lines.append(line)))
