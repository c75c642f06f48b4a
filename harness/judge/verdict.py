"""Verdicts, exit codes, and the one fold that turns a run's evidence into a verdict.

- Owns: the closed vocabulary (pass | regressed | inconclusive | infra-error | skipped | interrupted), how verdicts
  combine (`worst`), the exit codes of `colobench run` (and the git-bisect mapping), and `fold`: evidence of the
  run + milestone results + gate results + expectation + triage -> (verdict, reason). Pure.
- Does not own: producing the evidence (run/execute.py), the result record (result.py) or rendering (report/).

What each input means for the verdict (decided here, once):
- `Evidence.unjudgeable` (events missing or malformed, a timeout before the engine came up, the harness's own limits)
  -> infra-error, whatever else failed: the run cannot be judged.
- a failure (runner exit code, a timeout after the engine came up, a failed milestone, a FAIL gate, an ERROR gate:
  the product emitted a NaN or inf) -> regressed, unless triage names an infra cause (environment incomplete, port
  in use, Ray failing to start, ...): then infra-error, since the product under test did not get to run.
- a MISSING gate (the runner emitted no value at all) with nothing else failed -> infra-error: the evidence is
  missing, so the verdict cannot be known; after a failure it is just listed with it.
- `Evidence.infra` (processes left behind) -> infra-error when nothing product-side failed; named beside a regression.
- an INCONCLUSIVE gate -> inconclusive; INACTIVE (cold start) and PASS gates -> pass.
- `expect: {fail: X}`: a regression for reason X is a pass; a pass is a regression ("did not occur").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from harness.judge.metrics import GateResult, GateStatus
from harness.judge.milestones import RuleResult

if TYPE_CHECKING:
    from harness.judge.triage import Diagnosis


class Verdict(str, Enum):
    PASS = "pass"
    REGRESSED = "regressed"
    INCONCLUSIVE = "inconclusive"
    INFRA_ERROR = "infra-error"
    INTERRUPTED = "interrupted"  # the run was stopped by SIGINT/SIGTERM while this scenario ran
    SKIPPED = "skipped"


# worst first: the run's verdict is the worst of its scenarios'
SEVERITY = [
    Verdict.INTERRUPTED,
    Verdict.REGRESSED,
    Verdict.INFRA_ERROR,
    Verdict.INCONCLUSIVE,
    Verdict.PASS,
    Verdict.SKIPPED,
]
EXIT_CODES = {
    Verdict.PASS: 0,
    Verdict.SKIPPED: 0,
    Verdict.INCONCLUSIVE: 0,
    Verdict.REGRESSED: 1,
    Verdict.INFRA_ERROR: 3,
    Verdict.INTERRUPTED: 130,
}
BISECT_EXIT_CODES = {**EXIT_CODES, Verdict.SKIPPED: 125, Verdict.INCONCLUSIVE: 125, Verdict.INFRA_ERROR: 125}
EXIT_HELP = "exit codes: 0 pass (inconclusive included), 1 regressed, 2 bad input, 3 infra-error, 130 interrupted"


def worst(verdicts: list[Verdict]) -> Verdict:
    if not verdicts:
        return Verdict.SKIPPED
    return min(verdicts, key=SEVERITY.index)


@dataclass(frozen=True)
class Evidence:
    """What the harness saw of the run's processes, before any rule."""

    unjudgeable: tuple[str, ...] = ()
    infra: tuple[str, ...] = ()
    failures: tuple[str, ...] = ()


def fold(
    evidence: Evidence,
    milestones: list[RuleResult],
    gates: list[GateResult],
    diagnosis: "Diagnosis | None",
    expected: str | None,
) -> tuple[Verdict, str]:
    """The verdict and its one-line reason (see the module docstring for what each input means)."""
    failures = list(evidence.failures) + [f"milestone {r.name}: {r.reason}" for r in milestones if not r.ok]
    failures += [g.reason for g in gates if g.status in (GateStatus.FAIL, GateStatus.ERROR)]
    missing = [g.reason for g in gates if g.status == GateStatus.MISSING]
    unsure = [g.reason for g in gates if g.status == GateStatus.INCONCLUSIVE]
    infra = list(evidence.infra)
    infra_cause = diagnosis is not None and diagnosis.is_infra and diagnosis.line is not None
    if infra_cause and (failures or missing or evidence.unjudgeable):
        infra.insert(
            0, f"environment or host fault, not the product: {diagnosis.name}: {diagnosis.line.text.strip()[:200]}"
        )
    if evidence.unjudgeable or (infra and (not failures or infra_cause)) or (missing and not failures):
        verdict, reason = Verdict.INFRA_ERROR, "; ".join(list(evidence.unjudgeable) + infra + missing[:3])
    elif failures:
        verdict, reason = Verdict.REGRESSED, "; ".join(failures[:3] + missing[:1] + infra)
    elif unsure:
        verdict, reason = Verdict.INCONCLUSIVE, "; ".join(unsure)
    else:
        verdict, reason = Verdict.PASS, ""

    if expected and verdict != Verdict.INFRA_ERROR:
        seen = (
            {diagnosis.name if diagnosis else "unknown"}
            | {f"gate:{g.metric}" for g in gates if g.status in (GateStatus.FAIL, GateStatus.ERROR)}
            | {f"milestone:{r.name}" for r in milestones if not r.ok}
        )
        if verdict == Verdict.REGRESSED and expected in seen:
            why = (
                diagnosis.one_line()
                if diagnosis and expected == diagnosis.name
                else next((f for f in failures if expected.split(":", 1)[-1] in f), reason)
            )
            return Verdict.PASS, f"failed as expected ({expected}): {why}"
        if verdict == Verdict.REGRESSED:
            reason = f"expected failure {expected}, got {diagnosis.name if diagnosis else 'unknown'}: {reason}"
        else:
            return Verdict.REGRESSED, f"expected failure {expected} did not occur (the run " + (
                "passed)" if verdict == Verdict.PASS else f"was {verdict.value}: {reason})"
            )
    # triage explains a failure; a run that only left something behind gets none (its log's first error-looking line
    # would be named as a cause it is not, e.g. sglang's "Ignore import error when loading ...")
    failed = failures or missing or evidence.unjudgeable
    if (
        failed
        and verdict in (Verdict.REGRESSED, Verdict.INFRA_ERROR)
        and diagnosis is not None
        and diagnosis.line is not None
        and "triage:" not in reason
    ):
        reason = f"{reason}; triage: {diagnosis.one_line()}"
    return verdict, reason
