"""Billing files of any size: read in bounded chunks, written to the spool as one atomic batch.

A CUR or FOCUS export can be several GB. `TableReader` hands it over in chunks (CSV: a block of
text at a time, decompressed on the fly; Parquet: record batches), so memory stays bounded by the
chunk size, not the file size. Every chunk is validated as it comes; `BillingBatch` writes the
normalized chunks into one spool file under a temporary name and renames it into place only when
the whole input validated. On any error the temporary file is removed: the spool, and so the
warehouse, is unchanged.

All rows of one replace `scope` must travel in one batch, because the warehouse replaces a scope
batch by batch: that is why a billing period split over several files becomes one batch here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from collectors.errors import InputError
from collectors.streaming import text_csv_reader
from tables import files, spool
from tables.records import conform, empty

# CSV: bytes of (decompressed) text per chunk. Parquet: rows per record batch.
CSV_BLOCK_BYTES = 4 << 20
PARQUET_BATCH_ROWS = 100_000


@dataclass(frozen=True)
class Chunk:
    """Rows of a file; `first_row` is the file row number of `frame` row 0 (CSV counts the
    header as row 1, so data starts at 2; Parquet rows count from 1)."""

    frame: pl.DataFrame
    first_row: int


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PAR1"


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


class TableReader:
    """The column names of a CSV (plain or gzip) or Parquet file, then its rows in chunks.

    CSV values come as text (the caller converts and checks them row by row); a UTF-8 byte-order
    mark and surrounding blanks are dropped from the header. Parquet columns keep their types.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        csv_block_bytes: int = CSV_BLOCK_BYTES,
        parquet_batch_rows: int = PARQUET_BATCH_ROWS,
    ) -> None:
        self.path = Path(path)
        self.csv_block_bytes = csv_block_bytes
        self.parquet_batch_rows = parquet_batch_rows
        try:
            self.kind = "parquet" if _is_parquet(self.path) else "csv"
        except FileNotFoundError:
            raise InputError(self.path, "file not found") from None
        except IsADirectoryError:
            raise InputError(self.path, "is a directory, not a file") from None
        self._raw_names = self._read_names()
        self.columns = [n.lstrip("\ufeff").strip() for n in self._raw_names]

    # Reading --------------------------------------------------------------------------------
    def _csv_stream(self) -> pa.NativeFile:
        compression = "gzip" if _is_gzip(self.path) else None
        # compression=None (no decompression) is valid; pyarrow-stubs lists only the codec names.
        return pa.input_stream(str(self.path), compression=compression)  # type: ignore[arg-type]

    def _read_names(self) -> list[str]:
        try:
            if self.kind == "parquet":
                return list(pq.ParquetFile(self.path).schema_arrow.names)
            with self._csv_stream() as stream:
                # open_csv reads any file-like object, NativeFile included (pyarrow-stubs: IO only).
                reader = pacsv.open_csv(
                    stream,  # type: ignore[arg-type]
                    read_options=pacsv.ReadOptions(block_size=1 << 20),
                )
                return list(reader.schema.names)
        except Exception as exc:
            raise self._error(exc) from None

    def chunks(self, columns: Sequence[str] | None = None) -> Iterator[Chunk]:
        """The rows in chunks, only `columns` (clean names) where given."""
        wanted = set(columns) if columns is not None else set(self.columns)
        raw = [r for r, c in zip(self._raw_names, self.columns, strict=True) if c in wanted]
        rename = {r: c for r, c in zip(self._raw_names, self.columns, strict=True) if r != c}
        first = 1 if self.kind == "parquet" else 2
        try:
            for batch in self._batches(raw):
                if batch.num_rows == 0:
                    continue
                frame = pl.from_arrow(pa.Table.from_batches([batch]))
                assert isinstance(frame, pl.DataFrame)  # a Table converts to a DataFrame
                if rename:
                    frame = frame.rename({k: v for k, v in rename.items() if k in frame.columns})
                yield Chunk(frame, first)
                first += batch.num_rows
        except InputError:
            raise
        except Exception as exc:
            raise self._error(exc) from None

    def _batches(self, raw: list[str]) -> Iterator[pa.RecordBatch]:
        if self.kind == "parquet":
            yield from pq.ParquetFile(self.path).iter_batches(
                batch_size=self.parquet_batch_rows, columns=raw
            )
            return
        with self._csv_stream() as stream:
            yield from text_csv_reader(stream, raw, self.csv_block_bytes)

    def _error(self, exc: Exception) -> InputError:
        text = str(exc)
        low = text.lower()
        if isinstance(exc, FileNotFoundError):
            return InputError(self.path, "file not found")
        if "compress" in low or "gzip" in low or "zlib" in low:
            return InputError(self.path, f"truncated or corrupt gzip data ({text})")
        if "utf8" in low or "utf-8" in low:
            return InputError(self.path, f"not UTF-8 text ({text})")
        if "empty csv" in low:
            return InputError(self.path, "no rows")
        kind = "Parquet" if self.kind == "parquet" else "CSV"
        return InputError(self.path, f"not a readable {kind} file ({text})")


class CurrencyGuard:
    """Remembers each billing account's currency across chunks: a second currency in one account
    cannot be right, and two currencies must never be added."""

    def __init__(self) -> None:
        self.seen: dict[str, str] = {}

    def check(self, path: Path, frame: pl.DataFrame, first_row: int) -> None:
        pairs = (
            frame.select("BillingAccountId", "BillingCurrency")
            .with_row_index("i")
            .unique(subset=["BillingAccountId", "BillingCurrency"], keep="first")
            .sort("i")
        )
        for i, account, currency in pairs.iter_rows():
            known = self.seen.setdefault(account, currency)
            if known != currency:
                raise InputError(
                    path,
                    f"billing account {account!r} has two currencies ({known} and {currency})",
                    row=first_row + i,
                    column="BillingCurrency",
                )


def require(path: Path, values: pl.Series, column: str, first_row: int) -> None:
    """Every row has a value."""
    nulls = values.is_null()
    if nulls.any():
        i = int(nulls.arg_true()[0])
        raise InputError(path, "value required", row=first_row + i, column=column)


_BILLING_ARROW = empty("billing_items").to_arrow().schema


class BillingBatch:
    """One `billing_items` spool batch, written chunk by chunk.

    Rows go to `<spool>/kind=billing_items/date=…/host=…/.tmp-part-….parquet`; `publish()`
    renames the file into place (the spool lists only finished names), `discard()` deletes it.
    Used as a context manager it publishes on success and discards on any exception.
    """

    def __init__(
        self,
        spool_dir: Path,
        host: str,
        *,
        metadata: dict[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.final = spool.new_batch_path(
            spool_dir, "billing_items", host, now or datetime.now(UTC)
        )
        self.tmp = spool.tmp_path(self.final)
        self.metadata = dict(metadata or {})
        self.rows = 0
        self.scopes: set[str] = set()
        self._writer: pq.ParquetWriter | None = None
        self.published: Path | None = None

    def add(self, frame: pl.DataFrame) -> None:
        """Append normalized billing rows."""
        frame = conform(frame, "billing_items")
        if frame.height == 0:
            return
        if self._writer is None:
            files.make_dirs(self.tmp.parent)
            schema = (
                _BILLING_ARROW.with_metadata(self.metadata) if self.metadata else _BILLING_ARROW
            )
            self._writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")
        self._writer.write_table(frame.to_arrow().cast(_BILLING_ARROW))
        self.rows += frame.height
        self.scopes.update(frame["scope"].unique().to_list())

    def publish(self) -> Path | None:
        """Move the batch into the spool; None when no row was added."""
        if self._writer is None:
            return None
        self._writer.close()
        self._writer = None
        files.publish(self.tmp, self.final)  # fsync, rename, fsync the directory
        self.published = self.final
        return self.final

    def discard(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):  # a half-written file is deleted anyway
                self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> BillingBatch:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.publish()
        else:
            self.discard()
