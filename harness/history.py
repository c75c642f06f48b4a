"""Results history in SQLite, behind a narrow store: record runs, read baselines, promote and revoke.

- Owns: the schema (`_SCHEMA_SQL`), `record_run`, `baseline` (the trusted window), `samples_of_run`,
  `samples_of_version`, `promote`/`revoke`, and safety with concurrent writers (WAL, busy timeout, one
  transaction per record, so an interrupted run loses nothing already written and never corrupts the file).
- Does not own: gate decisions (metrics.py) or what a fingerprint holds (fingerprint.py).
Nothing becomes a baseline without `promote`; revoked runs leave the window.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import time
from pathlib import Path
from statistics import median
from typing import Any

from harness.errors import HistoryError

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    identity TEXT NOT NULL,
    sglang TEXT,
    bucket TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    verdict TEXT NOT NULL,
    run_dir TEXT,
    recorded REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_identity ON runs(identity, bucket);
CREATE INDEX IF NOT EXISTS runs_run_id ON runs(run_id);
CREATE TABLE IF NOT EXISTS samples (
    run_row INTEGER NOT NULL REFERENCES runs(id),
    metric TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_run ON samples(run_row);
CREATE TABLE IF NOT EXISTS trust (
    run_id TEXT PRIMARY KEY,
    promoted REAL,
    revoked REAL
);
"""


def identity(scenario_id: str) -> str:
    """A scenario's id without its sglang version: the same scenario across versions."""
    return re.sub(r"\.sglang-\d[\w.+-]*?(?=\.(?!post|dev|rc)[a-z]|$)", ".sglang", scenario_id)


class HistoryStore:
    """SQLite-backed history. `path=":memory:"` for tests."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            if self.path != ":memory:":
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA busy_timeout=60000")
            self.db.executescript(_SCHEMA_SQL)
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot open the history database: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def record_run(self, run_id: str, scenario_id: str, sglang: str | None, bucket: str,
                   fingerprint: dict[str, Any], verdict: str, values: dict[str, list[float]], run_dir: str = "") -> int:
        """One scenario run and all its samples, in one transaction. Non-finite values are refused."""
        for metric, vals in values.items():
            bad = [v for v in vals if not isinstance(v, (int, float)) or not math.isfinite(v)]
            if bad:
                raise HistoryError(f"{scenario_id}: metric {metric!r} has a non-finite value {bad[0]!r}; not recorded")
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                cur = self.db.execute(
                    "INSERT INTO runs(run_id, scenario_id, identity, sglang, bucket, fingerprint, verdict, run_dir, recorded)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    (run_id, scenario_id, identity(scenario_id), sglang, bucket, json.dumps(fingerprint, sort_keys=True),
                     verdict, run_dir, time.time()))
                row = cur.lastrowid
                self.db.executemany("INSERT INTO samples(run_row, metric, value) VALUES (?,?,?)",
                                    [(row, m, float(v)) for m, vals in values.items() for v in vals])
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot record {scenario_id}: {exc}") from None
        return int(row)

    def _samples(self, where: str, params: tuple, metric: str | None) -> dict[str, list[float]]:
        sql = f"SELECT s.metric, s.value FROM samples s JOIN runs r ON r.id = s.run_row WHERE {where}"
        if metric:
            sql += " AND s.metric = ?"
            params = params + (metric,)
        out: dict[str, list[float]] = {}
        for name, value in self.db.execute(sql + " ORDER BY r.id", params):
            out.setdefault(name, []).append(value)
        return out

    def baseline(self, scenario_id: str, bucket: str, limit: int = 20) -> dict[str, list[float]]:
        """One value per run - the run's median - for the last `limit` trusted (promoted, not revoked) passing runs
        of this scenario and bucket. Steps of one run share that run's offset, so a run is the unit of evidence."""
        rows = [r for (r,) in self.db.execute(
            "SELECT r.id FROM runs r JOIN trust t ON t.run_id = r.run_id WHERE r.identity = ? AND r.bucket = ?"
            " AND t.promoted IS NOT NULL AND t.revoked IS NULL AND r.verdict = 'pass' ORDER BY r.id DESC LIMIT ?",
            (identity(scenario_id), bucket, limit))]
        if not rows:
            return {}
        per_run: dict[tuple[int, str], list[float]] = {}
        marks = ",".join("?" * len(rows))
        for row, name, value in self.db.execute(
                f"SELECT run_row, metric, value FROM samples WHERE run_row IN ({marks}) ORDER BY run_row", tuple(rows)):
            per_run.setdefault((row, name), []).append(value)
        out: dict[str, list[float]] = {}
        for (_, name), values in per_run.items():
            out.setdefault(name, []).append(float(median(values)))
        return out

    def samples_of_run(self, run_id: str, scenario_id: str | None = None) -> dict[str, dict[str, list[float]]]:
        """{scenario id: {metric: samples}} of one run (optionally one scenario; matched by identity)."""
        out: dict[str, dict[str, list[float]]] = {}
        for sid, in self.db.execute("SELECT DISTINCT scenario_id FROM runs WHERE run_id = ?", (run_id,)):
            if scenario_id is None or identity(sid) == identity(scenario_id):
                out[sid] = self._samples("r.run_id = ? AND r.scenario_id = ?", (run_id, sid), None)
        return out

    def samples_of_version(self, sglang: str, bucket: str | None = None) -> dict[str, dict[str, list[float]]]:
        """{scenario identity: {metric: samples}} of every run of one sglang version."""
        out: dict[str, dict[str, list[float]]] = {}
        sql = "SELECT DISTINCT identity FROM runs WHERE sglang = ?" + (" AND bucket = ?" if bucket else "")
        for ident, in self.db.execute(sql, (sglang, bucket) if bucket else (sglang,)):
            where = "r.sglang = ? AND r.identity = ?" + (" AND r.bucket = ?" if bucket else "")
            out[ident] = self._samples(where, (sglang, ident, bucket) if bucket else (sglang, ident), None)
        return out

    def runs(self, run_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, run_id, scenario_id, sglang, bucket, verdict, fingerprint, run_dir FROM runs"
        rows = self.db.execute(sql + (" WHERE run_id = ?" if run_id else "") + " ORDER BY id", (run_id,) if run_id else ())
        keys = ("row", "run_id", "scenario_id", "sglang", "bucket", "verdict", "fingerprint", "run_dir")
        return [dict(zip(keys, r)) for r in rows]

    def _known(self, run_id: str) -> None:
        if not self.db.execute("SELECT 1 FROM runs WHERE run_id = ? LIMIT 1", (run_id,)).fetchone():
            raise HistoryError(f"{self.path}: no run {run_id!r} in the history")

    def promote(self, run_id: str) -> None:
        self._known(run_id)
        with self.db:
            self.db.execute("INSERT INTO trust(run_id, promoted, revoked) VALUES (?, ?, NULL) ON CONFLICT(run_id)"
                            " DO UPDATE SET promoted = excluded.promoted, revoked = NULL", (run_id, time.time()))

    def revoke(self, run_id: str) -> None:
        self._known(run_id)
        with self.db:
            self.db.execute("INSERT INTO trust(run_id, promoted, revoked) VALUES (?, NULL, ?) ON CONFLICT(run_id)"
                            " DO UPDATE SET revoked = excluded.revoked", (run_id, time.time()))

    def trusted_runs(self) -> list[str]:
        return [r for (r,) in self.db.execute(
            "SELECT run_id FROM trust WHERE promoted IS NOT NULL AND revoked IS NULL ORDER BY promoted")]
