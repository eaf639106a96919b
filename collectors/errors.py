"""Errors about input a user handed us."""

from __future__ import annotations

from tables.escape import printable


class InputError(ValueError):
    """Bad input; the message names the file and, where known, the row and column."""

    def __init__(
        self, path: object, problem: str, *, row: int | None = None, column: str = ""
    ) -> None:
        where = printable(path)  # a file name with a newline or an escape shows as escapes
        if row is not None:
            where += f": row {row}"
        if column:
            shown = printable(column)
            where += f", column {shown}" if row is not None else f": column {shown}"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.row = row
        self.column = column
