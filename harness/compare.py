"""Compare two runs (or two versions from history): per scenario and metric A, B, delta, %, p-value, verdict.

- Owns: pairing scenarios across the two sides (by identity: the id without its sglang version), the per-metric
  decision (effect floor + Mann-Whitney U, direction from defaults.yaml `compare:`), the fingerprint diff shown
  next to any regression, and the table/markdown/plot output.
- Does not own: storage (history.py) or the statistics (stats.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tabulate import tabulate

from harness import fingerprint, history, metrics, plots, stats, yamlfile
from harness.errors import ColobenchError

RULES = yamlfile.load(Path(__file__).resolve().parent / "defaults.yaml")["compare"]


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    a: float
    b: float
    delta: float
    percent: float
    p_value: float | None
    verdict: str          # same | better | worse | inconclusive


def side(store: history.HistoryStore, spec: str) -> tuple[str, dict[str, dict[str, list[float]]], dict]:
    """(label, {identity: {metric: samples}}, fingerprint) for `RUN_ID` or `version:V`."""
    if spec.startswith("version:"):
        version = spec.split(":", 1)[1]
        data = store.samples_of_version(version)
        runs = [r for r in store.runs() if r["sglang"] == version]
        label = version
    else:
        data = {history.identity(k): v for k, v in store.samples_of_run(spec).items()}
        runs = store.runs(spec)
        label = spec
    if not data:
        raise ColobenchError(f"compare: nothing in the history for {spec!r}")
    return label, data, json.loads(runs[-1]["fingerprint"]) if runs else {}


def judge_metric(name: str, a: list[float], b: list[float]) -> tuple[str, float | None]:
    rule = RULES.get(name, RULES["default"])
    threshold = metrics.percent(rule.get("threshold", "5%"))
    change = stats.relative_change(stats.centre(b), stats.centre(a))
    if abs(change) <= threshold or abs(stats.centre(b) - stats.centre(a)) <= float(rule.get("abs_floor", 0.0)):
        return "same", None
    _, p = stats.mann_whitney_u(b, a)
    if p >= 0.05:
        return "inconclusive", p
    better = change > 0 if rule.get("better", "higher") == "higher" else change < 0
    return ("better" if better else "worse"), p


def rows(a: dict[str, dict[str, list[float]]], b: dict[str, dict[str, list[float]]]) -> list[Row]:
    out = []
    for ident in sorted(set(a) & set(b)):
        for metric in sorted(set(a[ident]) & set(b[ident])):
            va, vb = a[ident][metric], b[ident][metric]
            if not va or not vb:
                continue
            verdict, p = judge_metric(metric, va, vb)
            ca, cb = stats.centre(va), stats.centre(vb)
            out.append(Row(ident, metric, ca, cb, cb - ca, stats.relative_change(cb, ca), p, verdict))
    return out


def table(rs: list[Row], fmt: str = "simple") -> str:
    return tabulate([[r.scenario, r.metric, f"{r.a:.4g}", f"{r.b:.4g}", f"{r.delta:+.4g}", f"{r.percent:+.1%}",
                      "" if r.p_value is None else f"{r.p_value:.3g}", r.verdict] for r in rs],
                    headers=["scenario", "metric", "A", "B", "delta", "%", "p", "verdict"], tablefmt=fmt)


def markdown(label_a: str, label_b: str, rs: list[Row], fp_a: dict, fp_b: dict) -> str:
    out = [f"## compare {label_a} -> {label_b}", "", table(rs, "github")]
    if any(r.verdict == "worse" for r in rs):
        diff = fingerprint.diff(fp_a, fp_b)
        out += ["", "### Fingerprint diff (next to the regression)", "",
                tabulate([list(d) for d in diff[:80]], headers=["key", label_a, label_b], tablefmt="github") if diff
                else "(fingerprints identical)"]
    return "\n".join(out) + "\n"


def plot_versions(store: history.HistoryStore, identity: str, metric: str, path: Path) -> Path | None:
    """A metric of one scenario across every sglang version in the history."""
    versions = sorted({r["sglang"] for r in store.runs() if r["sglang"] and history.identity(r["scenario_id"]) == identity},
                      key=lambda v: [int(x) if x.isdigit() else x for x in v.replace("-", ".").split(".")])
    points = [store.samples_of_version(v).get(identity, {}).get(metric, []) for v in versions]
    if not any(points):
        return None
    return plots.metric_series(versions, {metric: points}, path, f"{identity}: {metric} by sglang version", metric)
