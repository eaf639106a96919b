import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from cli.main import main
from config.settings import Config, ConfigError, documented_keys, load_config

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "gpuledger.toml"


def _keys_in_file(raw: dict) -> set[str]:
    keys = set()
    for section, table in raw.items():
        for key in table:
            keys.add(f"{section}.{key}")
    return keys


def test_every_loader_key_is_in_the_shipped_file_with_a_comment():
    text = SHIPPED.read_text()
    raw = tomllib.loads(text)
    in_file = _keys_in_file(raw)
    lines = text.splitlines()
    for key in sorted(documented_keys()):
        section, _, name = key.partition(".")
        if section == "local" and name.startswith("hosts"):
            # the array of tables is documented in a comment block (it is empty by default)
            assert (
                f"# {name.split('.')[-1]}" in text
                or name == "hosts"
                or re.search(rf"\b{name.split('.')[-1]}\b", text)
            ), key
            continue
        assert key in in_file, f"{key} is missing from {SHIPPED}"
        idx = next(i for i, ln in enumerate(lines) if re.match(rf"^{name}\s*=", ln))
        assert lines[idx - 1].lstrip().startswith("#"), f"{key} has no comment above it"


def test_the_shipped_file_has_no_key_the_loader_does_not_know():
    raw = tomllib.loads(SHIPPED.read_text())
    assert _keys_in_file(raw) <= documented_keys()


def test_the_shipped_values_are_the_loader_defaults():
    loaded = load_config(SHIPPED)
    defaults = Config()
    for section in fields(Config):
        if section.name == "source":
            continue
        got, want = getattr(loaded, section.name), getattr(defaults, section.name)
        if section.name == "workloads":  # the shipped file names the demo's sensitive workload
            assert got.sensitive == ("clinical-nlp",)
            continue
        assert got == want, section.name


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "c").mkdir()
    f = tmp_path / "c" / "x.toml"
    f.write_text('[warehouse]\npath = "../w/wh.duckdb"\n[catalog]\npath = "cat.csv"\n')
    cfg = load_config(f)
    assert cfg.db_path == tmp_path / "w" / "wh.duckdb"
    assert cfg.spool_dir == tmp_path / "w" / "spool"
    assert cfg.snapshot_path == tmp_path / "w" / "dashboard.duckdb"
    assert cfg.catalog_path == tmp_path / "c" / "cat.csv"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[energy]\npue = "high"\n', "[energy] pue must be a number, got 'high'"),
        ("[energy]\npue = 7.0\n", "[energy] pue must be between 1 and 3, got 7.0"),
        ("[collect]\ninterval_s = 0.01\n", "[collect] interval_s must be between 0.2 and 60"),
        ('[demo]\nmode = "sometimes"\n', "[demo] mode must be one of auto, on, off"),
        ("[dashboard]\nport = 8501.5\n", "[dashboard] port must be a whole number"),
        ('[warehouse]\npaht = "x"\n', "[warehouse] has unknown key 'paht'"),
        ("[nosuch]\nx = 1\n", "unknown section [nosuch]"),
        (
            '[[local.hosts]]\nname = "ws1"\ngpu_model = "RTX 4090"\npurchase_usd = "12k"\n',
            "[local.hosts.ws1] purchase_usd must be a number, got '12k'",
        ),
        ('[[local.hosts]]\nname = "ws1"\n', "[local.hosts.ws1] gpu_model is required"),
        ("[warehouse\n", "not valid TOML"),
    ],
)
def test_a_bad_value_names_the_file_and_the_key(tmp_path, body, message):
    f = tmp_path / "bad.toml"
    f.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert str(err.value).startswith(f"{f}: ")
    assert message in str(err.value)


def test_the_cli_exits_2_on_a_bad_configuration(tmp_path, capsys):
    f = tmp_path / "bad.toml"
    f.write_text("[energy]\nprice_per_kwh = -1\n")
    assert main(["--config", str(f), "doctor"]) == 2
    err = capsys.readouterr().err
    assert str(f) in err and "[energy] price_per_kwh" in err


def test_a_configured_local_host_is_loaded(tmp_path):
    f = tmp_path / "ok.toml"
    f.write_text(
        '[[local.hosts]]\nname = "dgx"\ngpu_model = "A100-80GB"\ngpu_count = 8\n'
        "purchase_usd = 96000\n"
    )
    host = load_config(f).local.hosts[0]
    assert (host.name, host.gpu_model, host.gpu_count, host.purchase_usd) == (
        "dgx",
        "A100-80GB",
        8,
        96000.0,
    )
