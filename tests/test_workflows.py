import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_workflows_pass_actionlint():
    exe = shutil.which(
        "actionlint", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    )
    if exe is None:
        pytest.skip("actionlint not installed (pip install -e '.[dev]')")
    res = subprocess.run([exe, "-shellcheck=", "-pyflakes="], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in readme


def _colobench_commands():
    """Every `colobench ...` command line the workflows run, with expressions and shell variables filled in."""
    import re
    import shlex

    import yaml

    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for job in doc["jobs"].values():
            for step in job.get("steps", []):
                script = re.sub(r"\$\{\{[^}]*\}\}", "1", step.get("run", "")).replace("\\\n", " ")
                for line in script.splitlines():
                    if "bin/colobench " not in line:
                        continue
                    line = re.sub(r'"\$\{\w+\[@\]\}"', "x", line)  # "${dirs[@]}": one item
                    line = line.replace('"$@"', "--matrix x --scenario x --good x --bad x")
                    line = next(
                        part for part in re.sub(r"\$\{?(\w+)\}?", "x", line).split(";") if "bin/colobench " in part
                    )
                    argv = shlex.split(line[line.index("bin/colobench ") + len("bin/colobench ") :])
                    yield path.name, [a for a in argv if a not in ("then", "fi")]


def test_every_colobench_command_in_the_workflows_parses():
    from harness.cli import build_parser

    found = list(_colobench_commands())
    assert len(found) >= 8
    for name, argv in found:
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"{name}: colobench {' '.join(argv)} does not parse ({exc})")
