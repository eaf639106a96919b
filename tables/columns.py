"""The small API every table and record definition is written in: a `Column` (name, type, unit,
one-line meaning) and a `Table` (its columns in stored order, its key).

A definition is the one place a shape is written. From it come the Polars schema
(`Table.polars_schema`), the DuckDB DDL (`Table.duckdb_ddl`, and for the versioned migrations the
shape as of a migration: `Column.since`, `Column.renamed`) and the headings pages show
(`Column.label`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import polars as pl

from tables.units import UNITS

UTC_TS = pl.Datetime("us", "UTC")

_DUCKDB_TYPES: dict[pl.DataType, str] = {
    UTC_TS: "TIMESTAMPTZ",
    pl.Date(): "DATE",
    pl.String(): "VARCHAR",
    pl.Float64(): "DOUBLE",
    pl.Int32(): "INTEGER",
    pl.Int64(): "BIGINT",
    pl.Int128(): "HUGEINT",
    pl.Boolean(): "BOOLEAN",
}
# How information_schema.columns spells the types DDL writes otherwise.
_INFORMATION_SCHEMA_NAMES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}


def duckdb_type(dtype: pl.DataType) -> str:
    """The DuckDB type a Polars type is stored as (a list of T as `T[]`)."""
    if isinstance(dtype, pl.List):
        inner = dtype.inner
        assert isinstance(inner, pl.DataType)  # List() keeps its inner type as an instance
        return f"{duckdb_type(inner)}[]"
    try:
        return _DUCKDB_TYPES[dtype]
    except KeyError:
        raise TypeError(f"no DuckDB type for Polars {dtype!r}") from None


def information_schema_type(dtype: pl.DataType) -> str:
    """The type as DuckDB's information_schema.columns.data_type reports it."""
    name = duckdb_type(dtype)
    base = name.removesuffix("[]" * name.count("[]"))
    return _INFORMATION_SCHEMA_NAMES.get(base, base) + "[]" * name.count("[]")


@dataclass(frozen=True)
class Column:
    """One column: its name, Polars type, unit (a key of `tables.units.UNITS`, "" for none) and
    what it means, in a line.

    `label` is the heading a page or table shows (defaults to the name). For stored tables,
    `since` is the migration that added the column, `default` its SQL default, and `renamed`
    (earlier name, migration) says it had another name before that migration.
    """

    name: str
    dtype: pl.DataType
    unit: str = ""
    meaning: str = ""
    label: str = ""
    since: int = 1
    default: str | None = None
    renamed: tuple[str, int] | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"column {self.name}: unknown unit {self.unit!r}")
        duckdb_type(self.dtype)  # refuses a type the warehouse cannot store
        if not self.label:
            object.__setattr__(self, "label", self.name)

    @property
    def duckdb_type(self) -> str:
        return duckdb_type(self.dtype)

    def name_at(self, version: int | None) -> str | None:
        """The column's name once migration `version` was applied (None: not there yet; a
        `version` of None: now)."""
        if version is None:
            return self.name
        if version < self.since:
            return None
        if self.renamed is not None and version < self.renamed[1]:
            return self.renamed[0]
        return self.name

    def ddl(self, version: int | None = None) -> str:
        """`"name" TYPE [DEFAULT x]`, as the column was after migration `version`."""
        text = f'"{self.name_at(version) or self.name}" {self.duckdb_type}'
        return f"{text} DEFAULT {self.default}" if self.default is not None else text


@dataclass(frozen=True)
class Table:
    """A stored table or a published record: its columns in order and what identifies a row.

    `key` names the columns that identify a row (documentation and deduplication); with
    `primary_key` the DDL declares them a PRIMARY KEY. `since` is the migration that created a
    stored table. `required` names the columns a published record promises (DESIGN.md §3).
    """

    name: str
    columns: tuple[Column, ...]
    meaning: str = ""
    key: tuple[str, ...] = ()
    primary_key: bool = False
    since: int = 1
    required: tuple[str, ...] = ()
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name = {c.name: c for c in self.columns}
        if len(by_name) != len(self.columns):
            raise ValueError(f"table {self.name}: a column name is repeated")
        missing = [k for k in (*self.key, *self.required) if k not in by_name]
        if missing:
            raise ValueError(f"table {self.name}: columns {missing} are not its columns")
        object.__setattr__(self, "_by_name", by_name)

    # Reading the definition -------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in stored order."""
        return tuple(c.name for c in self.columns)

    @property
    def polars_schema(self) -> pl.Schema:
        """name -> Polars type, in stored order (a new one each time: callers may extend it)."""
        return pl.Schema({c.name: c.dtype for c in self.columns})

    @property
    def labels(self) -> dict[str, str]:
        """name -> heading."""
        return {c.name: c.label for c in self.columns}

    def __getitem__(self, name: str) -> Column:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name} has no column {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def label(self, name: str) -> str:
        """The heading of column `name`."""
        return self[name].label

    def sql_columns(self, alias: str = "") -> str:
        """The column names as a SELECT list (`a, b` or, with an alias, `m.a, m.b`)."""
        prefix = f"{alias}." if alias else ""
        return ", ".join(f"{prefix}{n}" for n in self.names)

    def empty(self) -> pl.DataFrame:
        """An empty frame of this shape."""
        return pl.DataFrame(schema=self.polars_schema)

    # Related definitions ------------------------------------------------------------------------
    def select(
        self,
        *names: str,
        name: str | None = None,
        meaning: str = "",
        required: tuple[str, ...] | None = None,
    ) -> Table:
        """The definition of some of the columns (in the order given): what a reader takes, or
        a record published from this table."""
        return Table(
            name or self.name,
            tuple(self[n] for n in names),
            meaning or self.meaning,
            key=tuple(k for k in self.key if k in names),
            required=tuple(k for k in self.required if k in names)
            if required is None
            else required,
        )

    def extend(self, *columns: Column, name: str | None = None, meaning: str = "") -> Table:
        """This table with more columns after its own."""
        return replace(
            self,
            name=name or self.name,
            columns=self.columns + columns,
            meaning=meaning or self.meaning,
        )

    def copy_as(self, name: str, meaning: str = "") -> Table:
        """The same columns under another table name (a snapshot's copy of a warehouse table)."""
        return replace(self, name=name, meaning=meaning or self.meaning)

    # DDL ---------------------------------------------------------------------------------------
    def duckdb_ddl(
        self, *, as_of: int | None = None, if_not_exists: bool = False, schema: str = ""
    ) -> str:
        """`CREATE TABLE` for this table; `as_of` a migration: only the columns it had then, by
        the names they had then (how an older migration created it)."""
        cols = [c.ddl(as_of) for c in self.columns if c.name_at(as_of) is not None]
        if self.primary_key and self.key:
            cols.append("PRIMARY KEY (" + ", ".join(f'"{k}"' for k in self.key) + ")")
        exists = "IF NOT EXISTS " if if_not_exists else ""
        target = f"{schema}.{self.name}" if schema else self.name
        return f"CREATE TABLE {exists}{target} ({', '.join(cols)})"

    def add_column_ddl(self, name: str) -> str:
        """`ALTER TABLE … ADD COLUMN` for column `name` (the migration named by its `since`)."""
        return f"ALTER TABLE {self.name} ADD COLUMN {self[name].ddl()}"

    def rename_column_ddl(self, name: str) -> str:
        """`ALTER TABLE … RENAME COLUMN` from the column's earlier name to `name`."""
        column = self[name]
        if column.renamed is None:
            raise ValueError(f"{self.name}.{name} was never renamed")
        return f'ALTER TABLE {self.name} RENAME COLUMN "{column.renamed[0]}" TO "{name}"'


def key_value_table(name: str, meaning: str, *, primary_key: bool = True, since: int = 1) -> Table:
    """A key/value table (the bookkeeping of one part of a file: `meta` and the like)."""
    return Table(
        name,
        (
            Column("key", pl.String(), "", "what is recorded"),
            Column("value", pl.String(), "", "its value, as text"),
        ),
        meaning,
        key=("key",),
        primary_key=primary_key,
        since=since,
    )
