"""JUnit XML through junitparser: a testcase per scenario (and per earlier infra attempt).

- Owns: mapping verdicts to JUnit (regressed -> <failure>, infra-error -> <error>, skipped and inconclusive ->
  <skipped> with the reason), metrics/versions/run folder as <properties>, first error lines in system-out,
  and atomic writes so a report written so far stays valid XML when a run is interrupted.
- Does not own: verdicts (execute.py) or the markdown summary (report.py).
"""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Properties, Property, Skipped, TestCase, TestSuite

from harness import stats
from harness.verdict import ScenarioResult, Verdict

SUITE = "colobench"


def _case(result: ScenarioResult, name: str) -> TestCase:
    case = TestCase(name=name, classname=f"colobench.{Path(result.properties.get('scenario.source', 'matrix')).stem}",
                    time=result.duration_s)
    message = result.reason[:2000]
    if result.verdict == Verdict.REGRESSED:
        case.result = [Failure(message=message, type_="regressed")]
    elif result.verdict == Verdict.INFRA_ERROR:
        case.result = [Error(message=message, type_="infra-error")]
    elif result.verdict in (Verdict.SKIPPED, Verdict.INCONCLUSIVE):
        case.result = [Skipped(message=f"{result.verdict.value}: {message}" if message else result.verdict.value)]
    props = {"verdict": result.verdict.value, "run_dir": result.run_dir, **result.properties}
    for metric, values in sorted(result.metrics.items()):
        finite = [v for v in values if v == v]
        props[f"metric.{metric}"] = f"{stats.centre(finite):.6g}" if finite else "nan"
        props[f"metric.{metric}.samples"] = ",".join(f"{v:.6g}" for v in values)
    if result.diagnosis:
        props["triage.signature"] = result.diagnosis["signature"]
        props["triage.layer"] = str(result.diagnosis.get("layer"))
    properties = Properties()
    for key, value in props.items():
        properties.add_property(Property(key, str(value)))
    case.append(properties)
    if result.error_lines:
        case.system_out = "\n".join(result.error_lines)
    return case


def build(results: list[ScenarioResult]) -> JUnitXml:
    suite = TestSuite(SUITE)
    for result in results:
        for i, earlier in enumerate(result.attempts, 1):
            suite.add_testcase(_case(ScenarioResult.from_json(earlier), f"{result.scenario_id} [attempt {i}]"))
        suite.add_testcase(_case(result, result.scenario_id))
    xml = JUnitXml()
    xml.add_testsuite(suite)
    return xml


def write(results: list[ScenarioResult], path: Path) -> Path:
    """Write junit.xml atomically (temp file + rename)."""
    tmp = path.with_name(path.name + ".tmp")
    build(results).write(str(tmp), pretty=True)
    tmp.replace(path)
    return path
