"""PNG figures (matplotlib, optional): a metric across versions or probes. No other module draws.

Returns None when matplotlib is not installed, so reports still render without figures.
"""

from __future__ import annotations

import textwrap
from pathlib import Path


def metric_series(
    labels: list[str], series: dict[str, list[list[float]]], path: Path, title: str, ylabel: str = ""
) -> Path | None:
    """One line per series name; each point is the median of its samples, whiskers span min..max."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    from harness.judge import stats

    width = max(4.0, 0.9 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(width, 3.2), dpi=110)
    for name, points in series.items():
        xs = [i for i, p in enumerate(points) if p]
        mids = [stats.centre(points[i]) for i in xs]
        lows = [mids[k] - min(points[i]) for k, i in enumerate(xs)]
        highs = [max(points[i]) - mids[k] for k, i in enumerate(xs)]
        ax.errorbar(xs, mids, yerr=[lows, highs], marker="o", capsize=3, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_title(textwrap.fill(title, int(width * 11)), fontsize=9)  # a long scenario id wraps, never clips
    ax.set_ylabel(ylabel, fontsize=8)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
