"""Bisection: the search itself (fake probes), and a real bisect over the commits of a plugin repo on CPU."""

import math
import subprocess
import textwrap

import pytest

from harness.errors import ColobenchError
from harness.run import envs
from harness.study import bisect
from harness.study.bisect import BAD, GOOD, SKIP, Probe


def fake(first_bad: int, skips=()):
    calls = []

    def probe(candidate):
        calls.append(candidate)
        i = int(candidate)
        outcome = SKIP if i in skips else (BAD if i >= first_bad else GOOD)
        return Probe(candidate, outcome, None)

    return probe, calls


@pytest.mark.parametrize("n", [2, 3, 5, 7, 8, 9, 16, 33])
def test_finds_every_boundary_within_the_bound(n):
    for first_bad in range(1, n):
        probe, calls = fake(first_bad)
        res = bisect.search([str(i) for i in range(n)], probe)
        assert res.first_bad == str(first_bad) and res.last_good == str(first_bad - 1)
        assert len(calls) <= bisect.max_probes(n) == math.ceil(math.log2(n)) + 1


def test_skipped_probes_try_a_neighbour():
    probe, calls = fake(6, skips={4})
    res = bisect.search([str(i) for i in range(9)], probe)
    assert res.first_bad == "6" and calls[1] == "4" and calls[2] == "3"  # 4 skipped, its neighbour tried
    probe, _ = fake(5, skips={4})
    assert bisect.search([str(i) for i in range(9)], probe).ambiguous == ["4", "5"]  # as git bisect: can't tell


def test_all_skipped_is_ambiguous():
    probe, _ = fake(3, skips={1, 2, 3})
    res = bisect.search([str(i) for i in range(5)], probe)
    assert res.first_bad is None and res.ambiguous == ["1", "2", "3", "4"]


def test_a_passing_bad_end_is_an_error():
    probe, _ = fake(99)
    with pytest.raises(ColobenchError, match="the bad end 4 passed"):
        bisect.search([str(i) for i in range(5)], probe)


def test_versions_between_keeps_releases_in_order():
    avail = ["0.5.9", "0.5.10", "0.5.11", "0.5.12rc1", "0.5.12", "0.5.13", "0.5.14"]
    assert bisect.versions_between("0.5.10", "0.5.13", avail) == ["0.5.10", "0.5.11", "0.5.12", "0.5.13"]
    with pytest.raises(ColobenchError, match="not among"):
        bisect.versions_between("0.5.1", "0.5.13", avail)


PLUGIN = '''
import torch

BIAS = {bias}


def process_logits(logits: torch.Tensor) -> torch.Tensor:
    """Engine-side logits hook; a non-zero bias makes engine and trainer log-probs disagree."""
    if BIAS:
        logits = logits.clone()
        logits[..., ::2] += BIAS
    return logits
'''


def make_repo(path, bad_from: int, commits: int):
    path.mkdir()
    (path / "pyproject.toml").write_text(
        textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "cb-sampling-plugin"
        version = "0.0.1"
        [project.entry-points."colobench.reference_plugins"]
        bias = "cb_sampling_plugin"
        """)
    )
    git = ["git", "-C", str(path), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    shas = []
    for i in range(commits):
        (path / "cb_sampling_plugin.py").write_text(PLUGIN.format(bias=2.0 if i >= bad_from else 0.0))
        (path / "CHANGES").write_text(f"commit {i}\n")
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-qm", f"c{i}"], check=True)
        shas.append(subprocess.run(git[:3] + ["rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip())
    return shas


def test_real_bisect_over_plugin_commits_finds_the_planted_first_bad(tmp_path, monkeypatch, run_cli):
    pytest.importorskip("torch")
    pytest.importorskip("ray")
    monkeypatch.setenv(envs.ENV_DIR_ENV, str(tmp_path / "envs"))
    repo = tmp_path / "plugin"
    shas = make_repo(repo, bad_from=4, commits=7)
    code, out, err = run_cli(
        "bisect",
        "--scenario",
        "tiny-llama.tp1.colocate.ref",
        "--sglang-repo",
        repo,
        "--good",
        shas[0],
        "--bad",
        shas[-1],
        "--reports-dir",
        tmp_path / "reports",
    )
    assert code == 0, err[-3000:]
    assert f"first bad: **{shas[4][:10]}**, last good: **{shas[3][:10]}**" in out
    probes = [line for line in err.splitlines() if line.startswith("probe ")]
    assert len(probes) <= bisect.max_probes(7)
    assert "logprob_abs_diff" in out  # the metric diff between last good and first bad
    again = envs.for_commit(repo, shas[4])
    assert again.meta["key"] == again.key and len(envs.listing()) == len(probes)  # reused, not rebuilt
