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


def test_every_instance_gpu_model_is_a_gpu_class():
    cat = load_catalog(SHIPPED)
    classes = set(cat.filter(pl.col("kind") == "gpu")["gpu_model"])
    assert set(cat.filter(pl.col("kind") == "instance")["gpu_model"]) <= classes


def test_a_bad_price_names_row_and_column(tmp_path):
    lines = SHIPPED.read_text().splitlines()
    lines[3] = lines[3].replace(",30000,", ",thirty,", 1) if ",30000," in lines[3] else lines[3]
    lines[2] = lines[2].replace(",30000,", ",thirty,")
    bad = tmp_path / "catalog.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(CatalogError, match=r"row 3, column purchase_usd_per_gpu: 'thirty'"):
        load_catalog(bad)


def test_a_missing_column_is_named(tmp_path):
    bad = tmp_path / "catalog.csv"
    bad.write_text("kind,name\ngpu,H100\n")
    with pytest.raises(CatalogError, match="missing column"):
        load_catalog(bad)
