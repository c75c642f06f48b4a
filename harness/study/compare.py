"""Compare two runs (or two versions from history): per scenario and metric A, B, delta, %, p-value, verdict.

- Owns: pairing scenarios across the two sides (by identity: the id without its sglang version), the per-metric
  decision (judge/change.decide over one median per run, direction, threshold and floor from the metric table in
  defaults.yaml; one run a side is `inconclusive`, since steps of one run share its offset), the fingerprint diff shown
  next to any regression, and the table/markdown/plot output.
- Does not own: storage (history.py) or the statistics (stats.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from harness.errors import ColobenchError
from harness.judge import change, metrics, stats
from harness.matrix import defaults
from harness.matrix.axes import version_key
from harness.report import plots
from harness.store import fingerprint, history


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    a: float
    b: float
    delta: float
    percent: float
    p_value: float | None
    verdict: str  # same | better | worse | inconclusive
    runs: tuple[int, int] = (1, 1)  # runs behind A and B


Side = dict[str, list[dict[str, list[float]]]]  # {scenario identity: samples of each run}


def side(store: history.HistoryStore, spec: str) -> tuple[str, Side, dict]:
    """(label, {identity: samples of each run}, fingerprint) for `RUN_ID` or `version:V`."""
    if spec.startswith("version:"):
        version = spec.split(":", 1)[1]
        data = store.scenarios_of_version(version)
        runs = [r for r in store.runs() if r["sglang"] == version]
        label = version
    else:
        data = store.scenarios_of_run(spec)
        runs = store.runs(spec)
        label = spec
    if not data:
        raise ColobenchError(f"compare: nothing in the history for {spec!r}")
    return label, data, json.loads(runs[-1]["fingerprint"]) if runs else {}


def judge_metric(name: str, a: list[float], b: list[float]) -> tuple[str, float | None]:
    """Verdict and p-value for one metric, `a` and `b` holding one value (a median) per run: change.decide with the
    metric table's direction, threshold and floor (the rule gates and bisect use)."""
    rule = defaults.metric(name)
    found = change.decide(a, b, rule.better, rule.threshold, rule.abs_floor)
    return found.outcome.value, found.p


def rows(a: Side, b: Side) -> list[Row]:
    out = []
    for ident in sorted(set(a) & set(b)):
        names = sorted({m for run in a[ident] for m in run} & {m for run in b[ident] for m in run})
        gates = {m: {} for m in names}  # one median per run
        va_runs, vb_runs = metrics.per_run_values(a[ident], gates), metrics.per_run_values(b[ident], gates)
        for metric in names:
            va, vb = va_runs.get(metric), vb_runs.get(metric)
            if not va or not vb:
                continue
            verdict, p = judge_metric(metric, va, vb)
            ca, cb = stats.centre(va), stats.centre(vb)
            out.append(
                Row(ident, metric, ca, cb, cb - ca, stats.relative_change(cb, ca), p, verdict, (len(va), len(vb)))
            )
    return out


def table(rs: list[Row], fmt: str = "simple") -> str:
    return tabulate(
        [
            [
                r.scenario,
                r.metric,
                f"{r.a:.4g}",
                f"{r.b:.4g}",
                f"{r.delta:+.4g}",
                f"{r.percent:+.1%}",
                "" if r.p_value is None else f"{r.p_value:.3g}",
                f"{r.runs[0]}/{r.runs[1]}",
                r.verdict,
            ]
            for r in rs
        ],
        headers=["scenario", "metric", "A", "B", "delta", "%", "p", "runs", "verdict"],
        tablefmt=fmt,
    )


def markdown(label_a: str, label_b: str, rs: list[Row], fp_a: dict, fp_b: dict) -> str:
    out = [f"## compare {label_a} -> {label_b}", "", table(rs, "github")]
    if any(r.verdict == "worse" for r in rs):
        diff = fingerprint.diff(fp_a, fp_b)
        out += [
            "",
            "### Fingerprint diff (next to the regression)",
            "",
            tabulate([list(d) for d in diff[:80]], headers=["key", label_a, label_b], tablefmt="github")
            if diff
            else "(fingerprints identical)",
        ]
    return "\n".join(out) + "\n"


def plot_versions(store: history.HistoryStore, identity: str, metric: str, path: Path) -> Path | None:
    """A metric of one scenario across every sglang version in the history."""
    versions = sorted(
        {r["sglang"] for r in store.runs() if r["sglang"] and r["identity"] == identity},
        key=version_key,
    )
    points = [
        metrics.per_run_values(store.scenarios_of_version(v).get(identity, []), {metric: {}}).get(metric, [])
        for v in versions
    ]
    if not any(points):
        return None
    return plots.metric_series(versions, {metric: points}, path, f"{identity}: {metric} by sglang version", metric)
