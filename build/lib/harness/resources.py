"""Where colobench's own data and a user's files are found, installed or checked out.

- Owns: the built-in matrices and models.yaml (package data `harness/builtin/` of an installed wheel, copied there
  from the repository's root `matrix/` and `models.yaml` at build time; those root files themselves in a checkout),
  and how a `--matrix` or `--models` argument resolves: a path (from the current directory) first, else a built-in
  matrix by name (`--matrix bump`, `--matrix matrix/bump.yaml`).
- Does not own: reading or validating the files (matrix/).
defaults.yaml and signatures.yaml live inside the package (harness/matrix/, harness/judge/) and are package data too.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from harness import REPO_ROOT
from harness.errors import ScenarioError


def builtin_root() -> Path:
    """The folder holding the built-in `matrix/` and `models.yaml`."""
    packaged = Path(str(resources.files("harness") / "builtin"))
    return packaged if (packaged / "models.yaml").is_file() else REPO_ROOT


def builtin_matrices() -> Path:
    return builtin_root() / "matrix"


def builtin_models() -> Path:
    return builtin_root() / "models.yaml"


def default_matrix() -> Path:
    """What `colobench run` runs without --matrix: the CPU smoke matrix on the reference engine."""
    return builtin_matrices() / "smoke.yaml"


def matrix_target(given: str | Path) -> Path:
    """A --matrix argument: the file or folder it names, else the built-in matrix of that name."""
    path = Path(given)
    if path.exists():
        return path
    named = builtin_matrices() / f"{path.stem}.yaml"
    if path.suffix in ("", ".yaml") and named.is_file():
        return named
    known = ", ".join(sorted(p.stem for p in builtin_matrices().glob("*.yaml")))
    raise ScenarioError(f"{given}: no such matrix file or folder (built-in matrices: {known})")


def models_files(given: str | Path | None) -> list[Path]:
    """The models files a selection reads: the built-in one, then the user's (--models, else ./models.yaml when
    there is one) whose entries add to or replace the built-in ones."""
    out = [builtin_models()]
    user = Path(given) if given else Path("models.yaml")
    if given and not user.is_file():
        raise ScenarioError(f"{user}: cannot read: no such models file")
    if user.is_file() and user.resolve() != out[0].resolve():
        out.append(user)
    return out
