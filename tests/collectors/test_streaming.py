"""Reading an imported file in bounded memory (collectors/streaming.py): chunks with their file
row numbers, and each limit refused naming the file, row and column."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import polars as pl
import pytest

from collectors import streaming
from collectors.errors import InputError
from collectors.streaming import MAX_FIELD_BYTES, TableStream

HEADER = "ts,host,gpu_uuid\n"


def write(tmp_path: Path, body: str | bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(body if isinstance(body, bytes) else body.encode())
    return path


def rows(path: Path, chunk_rows: int = 1000) -> list[tuple[int, int]]:
    """(first row, height) of every chunk."""
    table = TableStream(path, chunk_rows=chunk_rows)
    return [(c.first_row, c.frame.height) for c in table.chunks(table.columns)]


def refused(path: Path, **kw: int) -> str:
    with pytest.raises(InputError) as err:
        rows(path, **kw)
    assert str(err.value).startswith(str(path)), err.value
    return str(err.value)


def test_chunks_count_file_rows_from_two_and_keep_values_as_text(tmp_path: Path) -> None:
    body = HEADER + "".join(f"{i},h,g{i}\n" for i in range(10))
    path = write(tmp_path, body)
    assert rows(path, chunk_rows=4) == [(2, 4), (6, 4), (10, 2)]  # 10 rows: header is row 1
    table = TableStream(path)
    chunk = next(table.chunks(["gpu_uuid"]))
    assert chunk.frame.columns == ["gpu_uuid"] and chunk.frame.dtypes == [pl.String]


def test_a_gzip_file_streams_like_a_plain_one(tmp_path: Path) -> None:
    path = write(tmp_path, gzip.compress((HEADER + "1,h,g\n" * 5).encode()), "f.csv.gz")
    assert rows(path) == [(2, 5)]


def test_a_fifo_and_a_device_are_refused_before_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a FIFO, not a regular file"):
        TableStream(fifo)  # returns at once: opening a FIFO would block
    with pytest.raises(InputError, match="is a device or socket, not a regular file"):
        TableStream(Path("/dev/zero"))  # reading it would never end
    with pytest.raises(InputError, match="is a directory"):
        TableStream(tmp_path)


def test_a_value_over_the_field_limit_names_its_row_and_column(tmp_path: Path) -> None:
    ok = write(tmp_path, HEADER + "1,h," + "x" * MAX_FIELD_BYTES + "\n", "ok.csv")
    assert rows(ok) == [(2, 1)]  # 128 KiB exactly is kept (the corpus stores 100,000 chars)
    path = write(tmp_path, HEADER + "1,h,g\n2,h," + "x" * 200_000 + "\n")
    assert "row 3, column gpu_uuid: a value of 200,000 bytes" in refused(path)


def test_a_line_of_a_gibibyte_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """A small gzip inflating to one endless line: refused at the record limit (1 MiB), read
    a line at a time with that cap, never whole."""
    path = tmp_path / "endless.csv.gz"
    with gzip.open(path, "wb") as out:
        out.write(b"ts,host,gpu_uuid\n1,h,")
        for _ in range(64):
            out.write(b"x" * (1 << 20))
    assert path.stat().st_size < 200_000
    assert "row 2: longer than 1,048,576 bytes" in refused(path)


def test_gzip_that_inflates_past_the_cap_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streaming, "MIN_INFLATED_CAP", 1 << 20)
    path = write(tmp_path, gzip.compress((HEADER + "1,h,g\n" * 400_000).encode()), "bomb.csv.gz")
    assert path.stat().st_size * streaming.MAX_INFLATION < 2_400_000  # it inflates to 2.4 MB
    assert "inflates past 1,048,576 bytes" in refused(path)


def test_a_truncated_gzip_is_named_as_such(tmp_path: Path) -> None:
    whole = gzip.compress((HEADER + "1,h,g\n" * 1000).encode())
    path = write(tmp_path, whole[:-20], "cut.csv.gz")
    assert "truncated or corrupt gzip data" in refused(path)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (HEADER + "1,h,g\n\n2,h,g\n", "row 3: is blank, but rows follow it"),
        (HEADER + "1,h,g\n2,h\n", "row 3: has 2 fields where the header has 3"),
        ("ts,host,ts\n1,h,2\n", "column ts appears twice in the header"),
        (HEADER + "1,h,g\n2,é,g\n".encode("latin-1").decode("latin-1"), ""),
    ],
)
def test_malformed_rows_are_named(tmp_path: Path, body: str, words: str) -> None:
    if not words:  # the Latin-1 case: written as Latin-1 bytes
        path = write(tmp_path, body.encode("latin-1"))
        assert "not UTF-8 text" in refused(path)
        return
    assert words in refused(write(tmp_path, body))


def test_blank_lines_at_the_end_are_where_the_file_ends(tmp_path: Path) -> None:
    assert rows(write(tmp_path, HEADER + "1,h,g\n2,h,g\n\n\n")) == [(2, 2)]
    # a blank row at the end of one chunk, data in the next: still refused, by its row
    path = write(tmp_path, HEADER + "1,h,g\n\n2,h,g\n", "across.csv")
    assert "row 3: is blank" in refused(path, chunk_rows=1)


def test_a_quoted_value_may_span_lines(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + '1,h,"line one\nline two"\n2,h,g\n')
    table = TableStream(path)
    frame = next(table.chunks(table.columns)).frame
    assert frame["gpu_uuid"].to_list() == ["line one\nline two", "g"]


def test_a_nested_parquet_column_is_refused_naming_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pl.DataFrame({"ts": [1, 2, 3], "host": [None, ["a", "b"], ["c"]]}).write_parquet(path)
    table = TableStream(path)
    assert table.kind == "parquet"
    with pytest.raises(InputError, match=r"row 2, column host: holds \w*list<"):
        list(table.chunks(["ts", "host"]))
    assert [c.frame.height for c in table.chunks(["ts"])] == [3]  # the other column reads


def test_empty_files_say_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty file"):
        TableStream(write(tmp_path, b""))
    assert rows(write(tmp_path, HEADER, "header.csv")) == []
