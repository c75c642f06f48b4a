import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_workflows_pass_actionlint():
    exe = shutil.which("actionlint", path=os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")]))
    if exe is None:
        pytest.skip("actionlint not installed (pip install -e '.[dev]')")
    res = subprocess.run([exe, "-shellcheck=", "-pyflakes="], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in readme
