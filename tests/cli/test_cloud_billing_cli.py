"""`gpuledger billing azure|gcp` end to end: the [azure]/[gcp] settings checked with errors that
name the key, a pull from the emulator into the warehouse, a second pull counting nothing twice,
and the status Data health shows."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pytest

from cli.main import main
from cli.providers import azure as azure_provider
from cli.providers import gcp as gcp_provider
from config.settings import ConfigError
from tests.collectors.billing.emulators import azurite  # noqa: F401  (fixture)
from tests.collectors.billing.test_azure import ea_csv, ea_row
from warehouse.billing_state import pull_status_rows, status_path


def test_the_settings_are_checked_naming_the_key(cfg):
    with pytest.raises(ConfigError, match=r"\[azure\] container is empty"):
        azure_provider.pull_options(cfg)
    both = replace(cfg, gcp=replace(cfg.gcp, bucket="b", bigquery_table="p.d.t"))
    with pytest.raises(ConfigError, match=r"\[gcp\] bucket = 'b' and bigquery_table"):
        gcp_provider.pull_options(both)
    with pytest.raises(ConfigError, match=r"\[gcp\] set bucket"):
        gcp_provider.pull_options(cfg)


def test_billing_azure_pulls_into_the_warehouse_once(cfg, tmp_path, azurite, monkeypatch):  # noqa: F811
    """One run of $12.5 + $7.5: stored $20; pulled again: still $20, status `unchanged`."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("GPULEDGER_TEST_AZURE", azurite.connection_string)
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    service.create_container("clicosts")
    folder = "exports/gpu/20261101-20261130/"
    blob = service.get_container_client("clicosts")
    blob.upload_blob(folder + "gpu_1.csv", ea_csv([ea_row(12.5), ea_row(7.5, day="11/06/2026")]))
    toml = tmp_path / "azure.toml"
    toml.write_text(
        (cfg.base_dir / "gpuledger.toml")
        .read_text()
        .replace('container = ""', 'container = "clicosts"')
        .replace('connection_string_env = ""', 'connection_string_env = "GPULEDGER_TEST_AZURE"')
        .replace('storage_account = ""', 'storage_account = "devstoreaccount1"')
    )
    args = ["--config", str(toml), "--db", str(cfg.db_path), "billing", "azure"]
    assert main([*args, "--format", "json"]) == 0
    assert main([*args, "--format", "json"]) == 0
    with duckdb.connect(str(cfg.db_path), read_only=True) as con:
        (total,) = con.execute("SELECT sum(EffectiveCost) FROM billing_items").fetchone()
    assert total == pytest.approx(20.0)
    state = cfg.db_path.parent / "warehouse.billing_state.duckdb"
    rows = pull_status_rows(status_path(state))
    assert [(r["provider"], r["period"], r["status"]) for r in rows] == [
        ("azure", "2026-11", "unchanged")
    ]
