"""JUnit XML through junitparser: one testcase per scenario, earlier infra attempts as Surefire rerun children.

- Owns: mapping verdicts to JUnit (regressed -> <failure>, infra-error and interrupted -> <error>, skipped and
  inconclusive -> <skipped> with the reason), metrics/versions/run folder as <properties>, first error lines in
  system-out, and atomic writes so a report written so far stays valid XML when a run is interrupted.
- Does not own: verdicts (judge/verdict.py) or the markdown summary (summary.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree as ET

from junitparser import (
    Error,
    Failure,
    JUnitXml,
    Properties,
    Property,
    Skipped,
    TestCase,
    TestSuite,
)

from harness import files
from harness.judge import stats
from harness.judge.result import ScenarioResult
from harness.judge.verdict import Verdict

SUITE = "colobench"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold


def _xml_text(text: object) -> str:
    """Log text as XML can carry it (ANSI escapes and other control characters from logs dropped)."""
    return _NOT_XML.sub("", str(text))


def _case(result: ScenarioResult, name: str) -> TestCase:
    case = TestCase(
        name=name,
        classname=f"colobench.{Path(result.properties.get('scenario.source', 'matrix')).stem}",
        time=result.duration_s,
    )
    message = _xml_text(result.reason[:2000])
    if result.verdict == Verdict.REGRESSED:
        case.result = [Failure(message=message, type_="regressed")]
    elif result.verdict in (Verdict.INFRA_ERROR, Verdict.INTERRUPTED):
        case.result = [Error(message=message, type_=result.verdict.value)]
    elif result.verdict in (Verdict.SKIPPED, Verdict.INCONCLUSIVE):
        case.result = [Skipped(message=f"{result.verdict.value}: {message}" if message else result.verdict.value)]
    props = {"verdict": result.verdict.value, "run_dir": result.run_dir, **result.properties}
    for metric, values in sorted(result.metrics.items()):
        finite = stats.finite(values)
        props[f"metric.{metric}"] = f"{stats.centre(finite):.6g}" if finite else "nan"
        props[f"metric.{metric}.samples"] = ",".join(f"{v:.6g}" for v in values)
        if metric in result.cv:
            props[f"metric.{metric}.cv"] = f"{result.cv[metric]:.4g}"
    if result.diagnosis:
        props["triage.signature"] = result.diagnosis["signature"]
        props["triage.layer"] = str(result.diagnosis.get("layer"))
    properties = Properties()
    for key, value in props.items():
        properties.add_property(Property(key, _xml_text(value)))
    case.append(properties)
    if result.error_lines:
        case.system_out = _xml_text("\n".join(result.error_lines))
    _reruns(case, result)
    return case


def _reruns(case: TestCase, result: ScenarioResult) -> None:
    """Earlier attempts (infra errors retried) as Surefire's rerun children of the one testcase: `flakyError` when
    the last attempt passed, `rerunError` when it did not; reporters then count one test, not two."""
    tag = "flakyError" if result.verdict == Verdict.PASS else "rerunError"
    for earlier in result.attempts:
        child = ET.SubElement(
            case._elem,
            tag,
            {
                "message": _xml_text(str(earlier.get("reason", ""))[:2000]),
                "type": _xml_text(earlier.get("verdict", "")),
            },
        )
        lines = earlier.get("error_lines") or []
        if lines:
            ET.SubElement(child, "system-out").text = _xml_text("\n".join(map(str, lines)))


def build(results: list[ScenarioResult]) -> JUnitXml:
    suite = TestSuite(SUITE)
    for result in results:
        suite.add_testcase(_case(result, result.scenario_id))
    xml = JUnitXml()
    xml.add_testsuite(suite)
    return xml


def write(results: list[ScenarioResult], path: Path) -> Path:
    """Write junit.xml atomically (temp file + rename)."""
    with files.atomic(path) as tmp:
        build(results).write(str(tmp), pretty=True)
    return path
