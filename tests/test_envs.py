import subprocess

from harness.run import envs


def test_an_environment_is_created_once_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv(envs.ENV_DIR_ENV, str(tmp_path))
    first = envs.create([])
    created = first.meta["created"]
    again = envs.create([])
    assert again.path == first.path and again.meta["created"] == created
    out = subprocess.run(
        [str(again.python), "-c", "import yaml, harness; print('ok')"],
        capture_output=True,
        text=True,
        cwd=str(tmp_path),
        env={"PYTHONPATH": str(__import__("tests.conftest").conftest.REPO)},
    )
    assert out.stdout.strip() == "ok"  # the parent environment's packages are inherited
    assert [e.key for e in envs.listing()] == [first.key]
    assert envs.prune(older_than_days=0) and envs.listing() == []


def test_preinstalled_pythons_come_from_the_environment(monkeypatch):
    monkeypatch.setenv(envs.PYTHONS_ENV, "0.5.12=/opt/a/python, 0.5.15=/opt/b/python")
    assert envs.preinstalled() == {"0.5.12": "/opt/a/python", "0.5.15": "/opt/b/python"}
