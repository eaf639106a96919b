import re
import tomllib
from dataclasses import fields
from pathlib import Path

import pytest

from cli.main import main
from config.settings import Config, ConfigError, documented_keys, load_config

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "gpuledger.toml"


def _keys_in_file(raw: dict, prefix: str = "") -> set[str]:
    """Every `section.key` of the file, a sub-table's keys as `section.table.key`."""
    keys = set()
    for key, value in raw.items():
        if isinstance(value, dict):
            keys |= _keys_in_file(value, f"{prefix}{key}.")
        elif prefix:
            keys.add(f"{prefix}{key}")
    return keys


def _line_of(lines: list[str], table: str, name: str) -> int:
    """The line of `name = …` in the file's `[table]` (before the next table starts)."""
    start = lines.index(f"[{table}]")
    for i in range(start + 1, len(lines)):
        if lines[i].startswith("["):
            break
        if re.match(rf"^{name}\s*=", lines[i]):
            return i
    raise AssertionError(f"{name} is not in [{table}]")


def test_every_loader_key_is_in_the_shipped_file_with_a_comment():
    text = SHIPPED.read_text()
    raw = tomllib.loads(text)
    in_file = _keys_in_file(raw)
    lines = text.splitlines()
    for key in sorted(documented_keys()):
        table, _, name = key.rpartition(".")
        if table.startswith("local.hosts") or key == "local.hosts":
            # the array of tables is documented in a comment block (it is empty by default)
            assert f"# {name}" in text or name == "hosts" or re.search(rf"\b{name}\b", text), key
            continue
        assert key in in_file, f"{key} is missing from {SHIPPED}"
        idx = _line_of(lines, table, name)
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
        ("[alerts.email]\nport = 0\n", "[alerts.email] port must be between 1 and 65535"),
        ('[report.email]\nrecipients = "a@b"\n', "[report.email] recipients must be a list"),
        ('[alerts]\nemail = "a@b"\n', "[alerts.email] must be a table, got 'a@b'"),
        ('[alerts.email]\nsmtp_host = "m"\n', "[alerts.email] has unknown key 'smtp_host'"),
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


@pytest.mark.parametrize(
    ("section", "old", "new"),
    [
        ("alerts", "smtp_host", "host"),
        ("alerts", "smtp_password_env", "password_env"),
        ("alerts", "email_from", "sender"),
        ("report", "smtp_port", "port"),
        ("report", "smtp_starttls", "starttls"),
        ("report", "email_to", "recipients"),
    ],
)
def test_a_flat_smtp_key_names_its_new_place(tmp_path, section, old, new):
    """[alerts] and [report] had the same eight SMTP keys; they are one [<section>.email] table."""
    f = tmp_path / "old.toml"
    f.write_text(f"[{section}]\n{old} = {'[]' if old == 'email_to' else '1'}\n")
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert f"[{section}] {old} is now {new} in [{section}.email]" in str(err.value)


def test_the_email_tables_are_one_type_read_apart(tmp_path):
    f = tmp_path / "mail.toml"
    f.write_text(
        '[alerts.email]\nhost = "smtp.example.com"\nrecipients = ["ops@example.com"]\n'
        "[report]\ntimeout_s = 60\n[report.email]\nport = 25\nstarttls = false\n"
        'user = "reports"\npassword_env = "REPORT_PW"\nsender = "r@example.com"\n'
    )
    cfg = load_config(f)
    alerts, report = cfg.alerts.email, cfg.report.email
    assert type(alerts) is type(report)
    assert (alerts.host, alerts.port, alerts.recipients, alerts.enabled) == (
        "smtp.example.com",
        587,
        ("ops@example.com",),
        True,
    )
    assert (report.host, report.port, report.starttls, report.user, report.enabled) == (
        "",
        25,
        False,
        "reports",
        False,  # no server, no recipient
    )
    assert (report.password_env, report.sender, cfg.report.timeout_s) == (
        "REPORT_PW",
        "r@example.com",
        60.0,
    )
