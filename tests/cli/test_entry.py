import subprocess
import sys

import pytest

from cli.entry import collect_argv


@pytest.mark.parametrize(
    ("argv", "lean"),
    [
        (["collect", "--once"], ["--once"]),
        (
            ["--config", "c.toml", "collect", "--source", "smi"],
            ["--config", "c.toml", "--source", "smi"],
        ),
        (["--format=json", "collect"], ["--format=json"]),
        (["import", "focus", "collect"], None),
        (["doctor"], None),
        ([], None),
    ],
)
def test_only_collect_takes_the_lean_path(argv, lean):
    assert collect_argv(argv) == lean


def test_the_lean_collector_does_not_load_duckdb_or_boto3():
    code = (
        "import sys; from cli.entry import main; "
        "rc = main(['collect', '--source', 'demo', '--once', '--format', 'json']); "
        "print(sorted(m for m in ('duckdb', 'boto3', 'advisor', 'streamlit') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
