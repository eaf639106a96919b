"""Errors about input a user handed us."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input; the message names the file and, where known, the row and column."""

    def __init__(
        self, path: object, problem: str, *, row: int | None = None, column: str = ""
    ) -> None:
        where = str(path)
        if row is not None:
            where += f": row {row}"
        if column:
            where += f", column {column}" if row is not None else f": column {column}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.row = row
        self.column = column
