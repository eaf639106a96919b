"""Reading an imported file in bounded memory: a CSV (plain or gzip) or Parquet file of any size
handed over in chunks of rows, every value as the file has it (CSV: text).

Memory stays bounded by the chunk, not the file: a CSV is parsed a block of text at a time
(Arrow's streaming reader), decompressed on the fly; a Parquet file a record batch at a time.
What no import can use is refused with an error that names the file, and the row and column
where there is one:

- anything but a regular file (a FIFO or a device would block, or never end);
- a record (a line, or the lines of one quoted value) longer than `MAX_RECORD_BYTES`, a value
  longer than `MAX_FIELD_BYTES`;
- gzip data that inflates more than `MAX_INFLATION` times (a "zip bomb");
- a header naming a column twice, a row with more or fewer fields than the header;
- a blank line between rows (blank lines at the very end are ignored);
- a nested Parquet column (a list, struct or map) where a plain value is read.

When Arrow's parser stops, the file is read once more, record by record, to name the row that
stopped it (`_locate`): the error path may be slow, the normal path never is.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from collectors.errors import InputError

CSV_BLOCK_BYTES = 1 << 20  # text parsed at a time (Arrow reads a few ahead): memory stays small
MAX_RECORD_BYTES = CSV_BLOCK_BYTES  # ... and the longest record Arrow can hold
MAX_FIELD_BYTES = 128 << 10  # one value: a name, a tag, a number
MAX_INFLATION = 100  # gzip: decompressed bytes per compressed byte
MIN_INFLATED_CAP = 64 << 20  # ... but a small file may always inflate to this much
CHUNK_ROWS = 100_000  # rows handed over at a time


def text_csv_reader(
    stream: BinaryIO | pa.NativeFile,
    columns: list[str],
    block_size: int,
    parse_options: pacsv.ParseOptions | None = None,
) -> pacsv.CSVStreamingReader:
    """Arrow's streaming CSV reader of `columns`, every value as text (empty stays "", never
    null): the readers check and convert the text themselves, naming row and column."""
    return pacsv.open_csv(
        stream,  # type: ignore[arg-type]  # a NativeFile is file-like
        read_options=pacsv.ReadOptions(block_size=block_size),
        parse_options=parse_options,
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in columns},
            include_columns=columns,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


@dataclass(frozen=True)
class Chunk:
    """Rows of a file; `first_row` is the file row of `frame` row 0 (CSV: the header is row 1,
    data starts at 2; Parquet rows count from 1)."""

    frame: pl.DataFrame
    first_row: int


def regular_file(path: Path) -> os.stat_result:
    """`path`'s status; InputError unless it is a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InputError(path, "file not found") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise InputError(path, "is a directory, not a file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or socket"
        raise InputError(path, f"is {kind}, not a regular file: copy it to a file and import that")
    return st


class _Inflated(io.RawIOBase):
    """A gzip stream that refuses to inflate past `cap` bytes."""

    def __init__(self, path: Path, cap: int) -> None:
        self.path = path
        self.cap = cap
        self.total = 0
        self._raw = open(path, "rb")  # noqa: SIM115  (closed with this stream)
        self._gz = gzip.GzipFile(fileobj=self._raw)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._gz.read(len(buffer))
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise InputError(self.path, f"truncated or corrupt gzip data ({exc})") from None
        self.total += len(data)
        if self.total > self.cap:
            raise InputError(
                self.path,
                f"gzip data inflates past {self.cap:,} bytes (over {MAX_INFLATION} times its "
                "size): not a plausible export; decompress it yourself if it is genuine",
            )
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._gz.close()
        self._raw.close()
        super().close()


def open_bytes(path: Path, size: int) -> BinaryIO:
    """The file's bytes, inflated on the fly when it is gzip data (by its magic number)."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if not gz:
        return open(path, "rb")  # noqa: SIM115  (the caller closes it)
    cap = max(MIN_INFLATED_CAP, MAX_INFLATION * size)
    return io.BufferedReader(_Inflated(path, cap), 1 << 20)


def _records(path: Path, stream: BinaryIO) -> Iterator[tuple[int, list[str]]]:
    """(row number, fields) of every CSV record, reading at most MAX_RECORD_BYTES a line, each
    line decoded as UTF-8 (a byte-order mark dropped before the header)."""

    def lines() -> Iterator[str]:
        for number in range(1, 1 << 62):
            raw = stream.readline(MAX_RECORD_BYTES + 1)
            if not raw:
                return
            if len(raw) > MAX_RECORD_BYTES:
                raise InputError(path, f"longer than {MAX_RECORD_BYTES:,} bytes", row=number)
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(
                    path, f"not UTF-8 text ({exc.reason} at byte {exc.start})", row=number
                ) from None

    limit = csv.field_size_limit()
    csv.field_size_limit(MAX_FIELD_BYTES)
    number = 0
    try:
        for number, fields in enumerate(csv.reader(lines()), start=1):  # noqa: B007
            yield number, fields
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            problem = f"a value longer than {MAX_FIELD_BYTES:,} bytes"
        else:
            problem = f"not a readable CSV file ({exc})"
        raise InputError(path, problem, row=number + 1) from None
    finally:
        csv.field_size_limit(limit)


TEXT_PROBE_BYTES = 64 << 10  # the start of a CSV checked to be UTF-8 text before anything else


def _check_text(path: Path, head: bytes) -> None:
    """Refuse a file whose first bytes are not UTF-8 (binary data, UTF-16, Latin-1 names): a
    multi-byte character cut at the end of `head` is not an error."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3 or len(head) < TEXT_PROBE_BYTES:
            raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _header(path: Path, size: int) -> list[str]:
    """The CSV header's column names as the file spells them; a name given twice is refused."""
    with open_bytes(path, size) as stream:
        _check_text(path, stream.read(TEXT_PROBE_BYTES))
    with open_bytes(path, size) as stream:
        first = next(_records(path, stream), None)
    if first is None:
        raise InputError(path, "not a readable CSV or Parquet file (empty file)")
    names = first[1]
    seen: set[str] = set()
    for name in (n.strip() for n in names):
        if name in seen:
            raise InputError(path, f"column {name} appears twice in the header", column=name)
        seen.add(name)
    return names


class TableStream:
    """A CSV (plain or gzip) or Parquet file: its column names, then its rows in chunks."""

    def __init__(self, path: str | Path, *, chunk_rows: int = CHUNK_ROWS) -> None:
        self.path = Path(path)
        self.size = regular_file(self.path).st_size
        self.chunk_rows = chunk_rows
        if self.size == 0:
            raise InputError(self.path, "not a readable CSV or Parquet file (empty file)")
        with open(self.path, "rb") as fh:
            self.kind = "parquet" if fh.read(4) == b"PAR1" else "csv"
        self._raw = (
            self._parquet_names() if self.kind == "parquet" else _header(self.path, self.size)
        )
        self.columns = [n.lstrip("\ufeff").strip() for n in self._raw]

    def _parquet_names(self) -> list[str]:
        try:
            return list(pq.ParquetFile(self.path).schema_arrow.names)
        except Exception as exc:
            raise InputError(self.path, f"not a readable Parquet file ({exc})") from None

    def chunks(self, columns: Sequence[str]) -> Iterator[Chunk]:
        """The rows in chunks of about `chunk_rows`, only `columns` (clean names, those the file
        has); every value checked against the limits of the module docstring."""
        raw = [r for r, c in zip(self._raw, self.columns, strict=True) if c in set(columns)]
        rename = {r: c for r, c in zip(self._raw, self.columns, strict=True) if r != c}
        if self.kind == "parquet":
            self._refuse_nested(raw)
        first = 1 if self.kind == "parquet" else 2
        blank: int | None = None  # a blank row seen, kept unless only blank rows follow
        for table in self._tables(raw):
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)  # a Table converts to a DataFrame
            frame = frame.rename({k: v for k, v in rename.items() if k in frame.columns})
            _refuse_long_values(self.path, frame, first)
            if self.kind == "csv":
                frame, blank = _drop_trailing_blanks(self.path, frame, first, blank)
            if frame.height:
                yield Chunk(frame, first)
            first += table.num_rows

    def _tables(self, raw: list[str]) -> Iterator[pa.Table]:
        """Arrow tables of about `chunk_rows` rows."""
        batches: list[pa.RecordBatch] = []
        rows = 0
        for batch in self._batches(raw):
            while batch.num_rows:
                take = min(batch.num_rows, self.chunk_rows - rows)
                batches.append(batch.slice(0, take))
                rows += take
                batch = batch.slice(take)
                if rows >= self.chunk_rows:
                    yield pa.Table.from_batches(batches)
                    batches, rows = [], 0
        if rows:
            yield pa.Table.from_batches(batches)

    def _batches(self, raw: list[str]) -> Iterator[pa.RecordBatch]:
        if self.kind == "parquet":
            try:
                yield from pq.ParquetFile(self.path).iter_batches(
                    batch_size=self.chunk_rows, columns=raw
                )
            except Exception as exc:
                raise InputError(self.path, f"not a readable Parquet file ({exc})") from None
            return
        stream = open_bytes(self.path, self.size)
        try:
            yield from text_csv_reader(
                stream,
                raw,
                CSV_BLOCK_BYTES,
                pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
            )
        except InputError:
            raise
        except Exception as exc:  # Arrow stopped: find the row, else say what it said
            raise self._locate(exc) from None
        finally:
            stream.close()

    def _locate(self, exc: Exception) -> InputError:
        """The first record that breaks a limit or the header's field count, read once more
        record by record; else `exc` in words."""
        try:
            with open_bytes(self.path, self.size) as stream:
                width = None
                for number, fields in _records(self.path, stream):
                    if width is None:
                        width = len(fields)
                    elif fields and len(fields) != width:
                        return InputError(
                            self.path,
                            f"has {len(fields)} fields where the header has {width} (truncated"
                            " or a stray delimiter?)",
                            row=number,
                        )
        except InputError as found:
            return found
        text = str(exc)
        if "utf8" in text.lower() or "utf-8" in text.lower():
            return InputError(self.path, f"not UTF-8 text ({text})")
        return InputError(self.path, f"not a readable CSV file ({text})")

    def _refuse_nested(self, raw: list[str]) -> None:
        """A list, struct or map column where one value per row is read: named with the first
        row that holds one."""
        schema = pq.ParquetFile(self.path).schema_arrow
        for name in raw:
            dtype = schema.field(name).type
            if pa.types.is_nested(dtype):
                row = _first_value_row(self.path, name, self.chunk_rows)
                raise InputError(
                    self.path,
                    f"holds {dtype} values, not one plain value per row",
                    row=row,
                    column=name.lstrip("\ufeff").strip(),
                )


def _first_value_row(path: Path, column: str, batch_rows: int) -> int | None:
    first = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=[column]):
        values = batch.column(0)
        if values.null_count < len(values):
            valid = pl.Series(values.is_valid().to_numpy(zero_copy_only=False))
            return first + int(valid.arg_true()[0])
        first += batch.num_rows
    return None


def _refuse_long_values(path: Path, frame: pl.DataFrame, first: int) -> None:
    """A text value longer than MAX_FIELD_BYTES, named by row and column."""
    for name, dtype in frame.schema.items():
        if dtype != pl.String:
            continue
        long = (frame[name].str.len_bytes() > MAX_FIELD_BYTES).fill_null(False)
        if long.any():
            i = int(long.arg_true()[0])
            raise InputError(
                path,
                f"a value of {frame[name].str.len_bytes()[i]:,} bytes (at most "
                f"{MAX_FIELD_BYTES:,})",
                row=first + i,
                column=name,
            )


def _drop_trailing_blanks(
    path: Path, frame: pl.DataFrame, first: int, pending: int | None
) -> tuple[pl.DataFrame, int | None]:
    """The chunk without the blank rows (every value empty) at its end, and the row of the first
    blank row no data has followed yet (`pending`, carried to the next chunk). A blank row with
    data after it is refused: that is not where a file ends but a cut, or two files run
    together."""
    blank = frame.select(pl.all_horizontal([pl.col(c) == "" for c in frame.columns]))
    mask = blank.to_series()
    data = (~mask).arg_true()
    if data.len() == 0:  # only blank rows
        return frame.head(0), pending if pending is not None else first
    if pending is not None:
        raise InputError(path, "is blank, but rows follow it", row=pending)
    last = int(data[-1])
    inner = mask.head(last).arg_true()
    if inner.len():
        raise InputError(path, "is blank, but rows follow it", row=first + int(inner[0]))
    return frame.head(last + 1), (first + last + 1 if last + 1 < frame.height else None)
