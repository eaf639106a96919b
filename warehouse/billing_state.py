"""What the AWS billing pulls remember between runs: Cost Explorer days pulled (and whether AWS
still called them Estimated), every Cost Explorer run with its request count, and the export
objects taken with their ETag.

It lives in its own small DuckDB file beside the warehouse (`billing_state.duckdb`), guarded by
its own lock, not in `warehouse.duckdb`: a pull must be able to run (and write its spool batch)
while the daemon owns the warehouse. It is a cache, never the truth: lost, the next pull
re-downloads and re-pulls, and the scope replace in the warehouse keeps every dollar counted once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from tables.billing_state import BILLING_STATE_TABLES
from warehouse.db import connect, transaction
from warehouse.lock import WriterLock

STATE_VERSION = 1
# Its tables, from their definitions (tables/billing_state.py).
_DDL = [t.duckdb_ddl(if_not_exists=True) for t in BILLING_STATE_TABLES.values()]


def state_path(db_path: Path) -> Path:
    """The state file of the warehouse at `db_path`."""
    return Path(db_path).parent / "billing_state.duckdb"


class BillingState:
    """The pull state; use as a context manager (takes `<state>.lock`, raises `LockHeld` while
    another pull runs, so two pulls never pay Cost Explorer twice for the same days)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock = WriterLock(self.path)
        self.con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> BillingState:
        self.lock.acquire()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.con = connect(self.path)
            for stmt in _DDL:
                self.con.execute(stmt).fetchall()
            self.con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('state_version', ?)", [str(STATE_VERSION)]
            ).fetchall()
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
        self.lock.release()

    @property
    def db(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            raise RuntimeError("billing state is not open")
        return self.con

    def mark(self, key: str, when: str) -> None:
        """Remember an ISO time under `key` (e.g. the last pull)."""
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, when]).fetchall()

    def marked(self, key: str) -> datetime | None:
        rows = self.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return datetime.fromisoformat(rows[0][0]) if rows else None

    # Cost Explorer ---------------------------------------------------------------------------
    def ce_days(self, account: str) -> dict[date, tuple[bool, datetime]]:
        """Day -> (still Estimated when last pulled, when it was pulled)."""
        rows = self.db.execute(
            "SELECT day, estimated, pulled_at FROM ce_days WHERE account = ?", [account]
        ).fetchall()
        return {d: (bool(e), p) for d, e, p in rows}

    def last_ce_run(self, account: str, *, rebuild: bool = False) -> datetime | None:
        """When the account was last pulled (`rebuild`: last month-to-date rebuild)."""
        sql = "SELECT max(run_at) FROM ce_runs WHERE account = ?"
        if rebuild:
            sql += " AND rebuild"
        return self.db.execute(sql, [account]).fetchall()[0][0]

    def record_ce_run(
        self,
        account: str,
        *,
        start: date,
        end: date,
        days: dict[date, bool],
        resources_from: date | None,
        requests: int,
        rebuild: bool,
        rows: int,
        now: datetime | None = None,
    ) -> None:
        """One pull: its days with their Estimated flag, and its request count."""
        now = now or datetime.now(UTC)
        with transaction(self.db) as con:
            con.executemany(
                "INSERT OR REPLACE INTO ce_days VALUES (?, ?, ?, ?, ?)",
                [
                    [account, d, est, resources_from is not None and d >= resources_from, now]
                    for d, est in sorted(days.items())
                ],
            )
            con.execute(
                "INSERT INTO ce_runs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [account, now, start, end, requests, rebuild, rows],
            ).fetchall()

    def ce_requests(self, since: datetime | None = None) -> int:
        """Cost Explorer requests made since `since` (all time without), across accounts."""
        since = since or datetime(1970, 1, 1, tzinfo=UTC)
        return int(
            self.db.execute(
                "SELECT coalesce(sum(requests), 0) FROM ce_runs WHERE run_at >= ?", [since]
            ).fetchall()[0][0]
        )

    # Exports ---------------------------------------------------------------------------------
    def export_objects(self, bucket: str, period: str) -> dict[str, str]:
        """Key -> ETag of the objects last taken for a billing period."""
        rows = self.db.execute(
            "SELECT key, etag FROM export_objects WHERE bucket = ? AND period = ?",
            [bucket, period],
        ).fetchall()
        return dict(rows)

    def record_export_period(
        self,
        bucket: str,
        period: str,
        objects: list[tuple[str, str, int]],
        *,
        now: datetime | None = None,
    ) -> None:
        """The (key, etag, size) objects now taken for `period`, replacing the earlier set."""
        now = now or datetime.now(UTC)
        with transaction(self.db) as con:
            con.execute(
                "DELETE FROM export_objects WHERE bucket = ? AND period = ?", [bucket, period]
            ).fetchall()
            con.executemany(
                "INSERT OR REPLACE INTO export_objects VALUES (?, ?, ?, ?, ?, ?)",
                [[bucket, k, period, e, s, now] for k, e, s in objects],
            )


# Each provider's last pull, for Data health ---------------------------------------------------
def status_path(state: Path) -> Path:
    """The pulls' status file beside the state file (`billing_state.status.json`). The dashboard
    reads it, never the state file (a reader would block a pull's writes)."""
    state = Path(state)
    return state.with_name(state.stem + ".status.json")


def record_pull_status(
    state: Path, provider: str, lines: list[dict[str, object]], *, now: datetime | None = None
) -> Path:
    """Replace `provider`'s entry of the status file: when it pulled and what each source said
    (the other providers' entries kept); the file is replaced whole (tables/files.py)."""
    import json

    from tables.files import atomic_write

    path = status_path(state)
    current = read_pull_status(path)
    current[provider] = {
        "pulled_at": (now or datetime.now(UTC)).isoformat(),
        "lines": lines,
    }
    text = json.dumps(current, indent=1, sort_keys=True, default=str)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def read_pull_status(path: Path) -> dict[str, dict]:
    """provider -> {pulled_at, lines}; {} when no pull has run (or the file is unreadable)."""
    import json

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pull_status_rows(path: Path, now: datetime | None = None) -> list[dict[str, object]]:
    """One row per provider and source line: provider, source, account, period, rows, status,
    pulled_at and the age in hours (Data health's table)."""
    now = now or datetime.now(UTC)
    out: list[dict[str, object]] = []
    for provider, entry in sorted(read_pull_status(path).items()):
        at = datetime.fromisoformat(str(entry.get("pulled_at")))
        for line in entry.get("lines") or [{}]:
            out.append(
                {
                    "provider": provider,
                    "source": line.get("source", ""),
                    "account": line.get("account", ""),
                    "period": line.get("period", ""),
                    "rows": line.get("rows", 0),
                    "status": line.get("status", ""),
                    "pulled_at": at,
                    "age_h": round((now - at).total_seconds() / 3600.0, 1),
                }
            )
    return out
