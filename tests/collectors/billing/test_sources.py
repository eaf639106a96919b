"""The billing file formats registry (collectors/billing/sources.py): `import NAME` and the S3
export reader dispatch through it, and a new format is one module + one line."""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cli.main import build_parser, main
from collectors.billing import formats, sources
from collectors.billing.aws_exports import billing_chunks
from collectors.billing.cur import read_cur_chunks
from collectors.billing.focus import read_focus_chunks
from collectors.billing.sources import FileFormat
from collectors.errors import InputError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures/realdata"
FOCUS = FIXTURES / "focus-sample-1.0/focus_sample.csv"
CUR = FIXTURES / "aws-cur-legacy-focusconv/sample-anonymous-aws-export-dataset.csv"


def read_chunks(path, *, tag_key="workload", reader=None):
    """The `fakefmt` format's reader: FOCUS rows, each EffectiveCost doubled (so the test can
    tell that this reader, not the focus one, read the file)."""
    for chunk in read_focus_chunks(path, tag_key=tag_key, reader=reader):
        yield chunk.with_columns(pl.col("EffectiveCost") * 2)


@pytest.fixture
def extra_format():
    entry = sources.register(
        FileFormat("fakefmt", "tests.collectors.billing.test_sources", (), "a test format")
    )
    yield entry
    del sources.FORMATS[entry.name]


def test_each_format_module_has_a_reader_and_each_identify_answer_one_format():
    assert tuple(sources.FORMATS) == ("focus", "cur", "azure")
    for fmt in sources.FORMATS.values():
        assert callable(importlib.import_module(fmt.module).read_chunks), fmt.name
    answers = ("focus", "cur_legacy", "cur_snake", "azure_cost")
    assert [sources.identified(a).name for a in answers] == ["focus", "cur", "cur", "azure"]
    assert sources.identified(None) is None
    with pytest.raises(ValueError, match="'cur' is taken"):
        sources.register(FileFormat("cur", "x", (), "again"))


def test_the_import_subcommands_are_samples_and_the_registered_formats(extra_format):
    parser = build_parser()
    (commands,) = [a for a in parser._subparsers._group_actions]
    (whats,) = commands.choices["import"]._subparsers._group_actions
    assert list(whats.choices) == ["samples", "focus", "cur", "azure", "fakefmt"]
    assert "a test format" in [a.help for a in whats._choices_actions]


def test_a_registered_format_is_imported_through_its_own_reader(cfg, extra_format, capsys):
    """FOCUS sample file: sum(EffectiveCost) read by focus, and twice that by `fakefmt`."""
    db = ["--config", cfg.source, "--db", str(cfg.db_path)]
    assert main([*db, "import", "fakefmt", str(FOCUS)]) == 0
    with duckdb.connect(str(cfg.db_path), read_only=True) as con:
        (stored,) = con.execute("SELECT sum(EffectiveCost) FROM billing_items").fetchone()
    by_focus = sum(c["EffectiveCost"].sum() for c in read_focus_chunks(FOCUS))
    assert stored == pytest.approx(2 * by_focus)


def test_an_export_file_is_read_by_the_format_its_columns_name(tmp_path):
    focus_rows = pl.concat(list(billing_chunks(FOCUS, "s3://b/focus.csv", "workload")))
    assert focus_rows.equals(pl.concat(list(read_focus_chunks(FOCUS))))
    cur_rows = pl.concat(list(billing_chunks(CUR, "s3://b/cur.csv", "workload")))
    assert cur_rows.equals(pl.concat(list(read_cur_chunks(CUR))))
    foreign = tmp_path / "azure.csv"
    foreign.write_text("MeterCategory,MeterId,SubscriptionId,Cost\nVM,1,s,1.0\n")
    with pytest.raises(InputError) as err:
        list(billing_chunks(foreign, "s3://b/azure.csv", "workload"))
    assert str(err.value).startswith("s3://b/azure.csv") and "Azure" in str(err.value)
    assert formats.identify(["MeterCategory"]) is None
