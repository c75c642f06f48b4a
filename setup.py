"""The built-in matrices and models.yaml travel in the wheel as package data (harness/builtin/): copied from the
repository's root at build time, so the root files stay the one copy (harness/resources.py finds either)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithBuiltins(build_py):
    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "harness" / "builtin"
        (dest / "matrix").mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "models.yaml", dest / "models.yaml")
        for path in sorted((ROOT / "matrix").glob("*.yaml")):
            shutil.copy2(path, dest / "matrix" / path.name)


setup(cmdclass={"build_py": BuildWithBuiltins})
