"""Results history in SQLite, behind a narrow store: record runs, read baselines, promote and revoke.

- Owns: the schema (`_SCHEMA_SQL`), `record_run`, `baseline` (the trusted window), `scenarios_of_run` /
  `scenarios_of_version` (named baselines, compare; every read keeps each run's samples apart), `promote`/`revoke`,
  and safety with concurrent writers (WAL, busy timeout, one transaction per record, so an interrupted run loses
  nothing already written and never corrupts the file).
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
from typing import Any

from harness.errors import HistoryError

_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    identity TEXT NOT NULL,          -- the scenario's identity (Scenario.identity), the key runs are grouped by
    sglang TEXT,
    bucket TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    verdict TEXT NOT NULL,
    run_dir TEXT,
    recorded REAL NOT NULL,
    duration_s REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_run_id ON runs(run_id);
CREATE TABLE IF NOT EXISTS samples (
    run_row INTEGER NOT NULL REFERENCES runs(id),
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    rep INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS samples_run ON samples(run_row);
CREATE TABLE IF NOT EXISTS interrupted (
    run_id TEXT PRIMARY KEY,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trust (
    run_id TEXT PRIMARY KEY,
    promoted REAL,
    revoked REAL
);
"""


def legacy_identity(scenario_id: str) -> str:
    """The identity an earlier colobench parsed from an id (its version and an A/B run's `.ab3b` suffix cut out): only
    for rows written before identities were stored as fields (a file's one-time migration, an old export's import)."""
    unversioned = re.sub(r"\.sglang-\d[\w.+-]*?(?=\.(?!post|dev|rc)[a-z]|$)", ".sglang", scenario_id)
    return re.sub(r"\.ab\d+[ab]$", "", unversioned)


IDENTITY_FIELDS = 2  # PRAGMA user_version from which the identity column is written from the scenario's fields


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
            if "rep" not in [c[1] for c in self.db.execute("PRAGMA table_info(samples)")]:  # a pre-repeat file
                self.db.execute("ALTER TABLE samples ADD COLUMN rep INTEGER NOT NULL DEFAULT 0")
            if "duration_s" not in [c[1] for c in self.db.execute("PRAGMA table_info(runs)")]:  # a pre-shard file
                self.db.execute("ALTER TABLE runs ADD COLUMN duration_s REAL NOT NULL DEFAULT 0")
            if self.db.execute("PRAGMA user_version").fetchone()[0] < IDENTITY_FIELDS:  # identities of older rules
                with self.db:
                    for row, sid in self.db.execute("SELECT id, scenario_id FROM runs").fetchall():
                        self.db.execute("UPDATE runs SET identity = ? WHERE id = ?", (legacy_identity(sid), row))
                    self.db.execute(f"PRAGMA user_version = {IDENTITY_FIELDS}")
        except sqlite3.Error as exc:
            raise HistoryError(
                f"{self.path}: cannot open the history database ({exc}); move it aside or restore it "
                "(colobench history export/import)"
            ) from None

    def close(self) -> None:
        self.db.close()

    def record_run(
        self,
        run_id: str,
        scenario_id: str,
        sglang: str | None,
        bucket: str,
        fingerprint: dict[str, Any],
        verdict: str,
        repetitions: list[dict[str, list[float]]],
        run_dir: str = "",
        duration_s: float = 0.0,
        identity: str | None = None,
    ) -> int:
        """One scenario run and all its samples (by repetition), in one transaction. Non-finite values are refused.
        `identity`: the scenario's (Scenario.identity); a caller without a scenario gives none and the id's legacy
        reading is stored."""
        for values in repetitions:
            for metric, vals in values.items():
                bad = [v for v in vals if not isinstance(v, (int, float)) or not math.isfinite(v)]
                if bad:
                    raise HistoryError(
                        f"{scenario_id}: metric {metric!r} has a non-finite value {bad[0]!r}; not recorded"
                    )
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                cur = self.db.execute(
                    "INSERT INTO runs(run_id, scenario_id, identity, sglang, bucket, fingerprint, verdict, run_dir,"
                    " recorded, duration_s) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        run_id,
                        scenario_id,
                        identity or legacy_identity(scenario_id),
                        sglang,
                        bucket,
                        json.dumps(fingerprint, sort_keys=True),
                        verdict,
                        run_dir,
                        time.time(),
                        float(duration_s),
                    ),
                )
                row = cur.lastrowid
                self.db.executemany(
                    "INSERT INTO samples(run_row, metric, value, rep) VALUES (?,?,?,?)",
                    [
                        (row, m, float(v), rep)
                        for rep, values in enumerate(repetitions)
                        for m, vals in values.items()
                        for v in vals
                    ],
                )
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot record {scenario_id}: {exc}") from None
        return int(row)

    def baseline(self, identity: str, bucket: str, limit: int = 20) -> list[dict[str, list[float]]]:
        """Samples of each run in the trusted window: the last `limit` promoted, not revoked, passing runs of this
        scenario identity and bucket. Steps of one run share that run's offset, so the gate summarises each run to
        one value."""
        rows = [
            r
            for (r,) in self.db.execute(
                "SELECT r.id FROM runs r JOIN trust t ON t.run_id = r.run_id WHERE r.bucket = ? AND r.identity = ?"
                " AND t.promoted IS NOT NULL AND t.revoked IS NULL AND r.verdict = 'pass' ORDER BY r.id DESC LIMIT ?",
                (bucket, identity, limit),
            )
        ]
        window = self._by_identity(f"r.id IN ({','.join('?' * len(rows))})", tuple(rows)) if rows else {}
        return window.get(identity, [])

    def _by_identity(self, where: str, params: tuple) -> dict[str, list[dict[str, list[float]]]]:
        """{scenario identity: samples of each run} for the runs rows matching `where`."""
        sql = (
            "SELECT r.identity, s.run_row, s.rep, s.metric, s.value FROM samples s JOIN runs r ON r.id = s.run_row"
            f" WHERE {where} ORDER BY s.run_row, s.rep"
        )
        out: dict[str, dict[tuple[int, int], dict[str, list[float]]]] = {}
        for ident, row, rep, name, value in self.db.execute(sql, params):
            out.setdefault(ident, {}).setdefault((row, rep), {}).setdefault(name, []).append(value)
        return {ident: list(runs.values()) for ident, runs in out.items()}

    def scenarios_of_run(self, run_id: str) -> dict[str, list[dict[str, list[float]]]]:
        """{scenario identity: samples of each of its runs} in one recorded run id (a repetition is a run)."""
        return self._by_identity("r.run_id = ?", (run_id,))

    def scenarios_of_version(self, sglang: str, bucket: str | None = None) -> dict[str, list[dict[str, list[float]]]]:
        """{scenario identity: samples of each of its runs} on one sglang version (optionally one bucket)."""
        if bucket is None:
            return self._by_identity("r.sglang = ?", (sglang,))
        return self._by_identity("r.sglang = ? AND r.bucket = ?", (sglang, bucket))

    def runs(self, run_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, run_id, scenario_id, identity, sglang, bucket, verdict, fingerprint, run_dir FROM runs"
        rows = self.db.execute(
            sql + (" WHERE run_id = ?" if run_id else "") + " ORDER BY id", (run_id,) if run_id else ()
        )
        keys = ("row", "run_id", "scenario_id", "identity", "sglang", "bucket", "verdict", "fingerprint", "run_dir")
        return [dict(zip(keys, r)) for r in rows]

    def durations(self, last: int = 5) -> dict[str, float]:
        """{scenario identity: median duration of its last `last` recorded runs} (shards are balanced by it)."""
        seen: dict[str, list[float]] = {}
        for ident, d in self.db.execute("SELECT identity, duration_s FROM runs WHERE duration_s > 0 ORDER BY id DESC"):
            kept = seen.setdefault(ident, [])
            if len(kept) < last:
                kept.append(d)
        return {k: sorted(v)[len(v) // 2] for k, v in seen.items()}

    def export_rows(self) -> list[dict[str, Any]]:
        """Every run (with its samples), trust mark and interrupt mark, as JSON-ready rows (`colobench history
        export`)."""
        cols = (
            "id",
            "run_id",
            "scenario_id",
            "identity",
            "sglang",
            "bucket",
            "fingerprint",
            "verdict",
            "run_dir",
            "recorded",
            "duration_s",
        )
        samples: dict[int, list] = {}
        for row, metric, value, rep in self.db.execute(
            "SELECT run_row, metric, value, rep FROM samples ORDER BY rowid"
        ):
            samples.setdefault(row, []).append([metric, value, rep])
        out: list[dict[str, Any]] = []
        for r in self.db.execute(f"SELECT {', '.join(cols)} FROM runs ORDER BY id"):
            row = dict(zip(cols, r))
            out.append(
                {"kind": "run", **{k: v for k, v in row.items() if k != "id"}, "samples": samples.get(row["id"], [])}
            )
        out += [
            {"kind": "trust", "run_id": a, "promoted": b, "revoked": c}
            for a, b, c in self.db.execute("SELECT run_id, promoted, revoked FROM trust")
        ]
        out += [
            {"kind": "interrupted", "run_id": a, "at": b}
            for a, b in self.db.execute("SELECT run_id, at FROM interrupted")
        ]
        return out

    def import_rows(self, rows: list[dict[str, Any]], where: str) -> int:
        """Add exported rows; a run already here (same run id, scenario and time) is skipped. Returns runs added."""
        added = 0
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for i, r in enumerate(rows):
                    kind = r.get("kind") if isinstance(r, dict) else None
                    if kind == "run":
                        key = (r["run_id"], r["scenario_id"], float(r["recorded"]))
                        if self.db.execute(
                            "SELECT 1 FROM runs WHERE run_id = ? AND scenario_id = ? AND recorded = ?", key
                        ).fetchone():
                            continue
                        if not all(isinstance(v, (int, float)) and math.isfinite(v) for _, v, _ in r["samples"]):
                            raise ValueError("a non-finite sample")
                        cur = self.db.execute(
                            "INSERT INTO runs(run_id, scenario_id, identity, sglang, bucket, fingerprint, verdict, "
                            "run_dir,"
                            " recorded, duration_s) VALUES (?,?,?,?,?,?,?,?,?,?)",
                            (
                                r["run_id"],
                                r["scenario_id"],
                                r.get("identity") or legacy_identity(r["scenario_id"]),
                                r.get("sglang"),
                                r["bucket"],
                                r["fingerprint"],
                                r["verdict"],
                                r.get("run_dir", ""),
                                key[2],
                                float(r.get("duration_s", 0)),
                            ),
                        )
                        self.db.executemany(
                            "INSERT INTO samples(run_row, metric, value, rep) VALUES (?,?,?,?)",
                            [(cur.lastrowid, m, float(v), int(rep)) for m, v, rep in r["samples"]],
                        )
                        added += 1
                    elif kind == "trust":
                        self.db.execute(
                            "INSERT OR REPLACE INTO trust(run_id, promoted, revoked) VALUES (?,?,?)",
                            (r["run_id"], r.get("promoted"), r.get("revoked")),
                        )
                    elif kind == "interrupted":
                        self.db.execute(
                            "INSERT OR REPLACE INTO interrupted(run_id, at) VALUES (?,?)", (r["run_id"], r["at"])
                        )
                    else:
                        raise ValueError(f"row {i + 1}: unknown kind {kind!r}")
        except (KeyError, TypeError, ValueError) as exc:
            raise HistoryError(f"{where}: not a colobench history export ({exc}); nothing imported") from None
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot import {where}: {exc}") from None
        return added

    def mark_interrupted(self, run_id: str) -> None:
        """The run was stopped by SIGINT/SIGTERM: what it recorded is kept, and it says so."""
        try:
            with self.db:
                self.db.execute("INSERT OR REPLACE INTO interrupted(run_id, at) VALUES (?, ?)", (run_id, time.time()))
        except sqlite3.Error as exc:
            raise HistoryError(f"{self.path}: cannot mark {run_id} interrupted: {exc}") from None

    def interrupted_runs(self) -> list[str]:
        return [r for (r,) in self.db.execute("SELECT run_id FROM interrupted ORDER BY at")]

    def _known(self, run_id: str) -> None:
        if not self.db.execute("SELECT 1 FROM runs WHERE run_id = ? LIMIT 1", (run_id,)).fetchone():
            raise HistoryError(f"{self.path}: no run {run_id!r} in the history")

    def promote(self, run_id: str) -> None:
        self._known(run_id)
        with self.db:
            self.db.execute(
                "INSERT INTO trust(run_id, promoted, revoked) VALUES (?, ?, NULL) ON CONFLICT(run_id)"
                " DO UPDATE SET promoted = excluded.promoted, revoked = NULL",
                (run_id, time.time()),
            )

    def revoke(self, run_id: str) -> None:
        self._known(run_id)
        with self.db:
            self.db.execute(
                "INSERT INTO trust(run_id, promoted, revoked) VALUES (?, NULL, ?) ON CONFLICT(run_id)"
                " DO UPDATE SET revoked = excluded.revoked",
                (run_id, time.time()),
            )

    def trusted_runs(self) -> list[str]:
        return [
            r
            for (r,) in self.db.execute(
                "SELECT run_id FROM trust WHERE promoted IS NOT NULL AND revoked IS NULL ORDER BY promoted"
            )
        ]
