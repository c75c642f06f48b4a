"""fingerprint: pip freeze lines, the diff shown next to a regression, secrets masked, machine buckets."""

import sys

from harness.store import fingerprint


def test_pip_freeze_keeps_one_line_per_package():
    pins = fingerprint.pip_freeze(sys.executable)
    assert any(p.lower().startswith("pyyaml==") for p in pins)
    assert "@" not in pins and not any(p.startswith("#") for p in pins)  # `name @ url` stays one entry


def test_diff_pairs_pins_by_package_name_whatever_their_form():
    a = {"gpu.name": "H200", "pip": ["sglang @ file:///w/.whl12/sglang-0.5.12.whl", "ray==2.60.0", "tabulate==0.9"]}
    b = {"gpu.name": "H200", "pip": ["sglang @ file:///w/.whl15/sglang-0.5.15.whl", "ray==2.60.0"]}
    assert fingerprint.diff(a, b) == [
        ("pip.sglang", "file:///w/.whl12/sglang-0.5.12.whl", "file:///w/.whl15/sglang-0.5.15.whl"),
        ("pip.tabulate", "0.9", "-"),
    ]


def test_env_is_filtered_and_secrets_masked():
    env = fingerprint.relevant_env({"NCCL_NVLS_ENABLE": "0", "HOME": "/root", "RAY_REDIS_PASSWORD": "hunter2"})
    assert env["NCCL_NVLS_ENABLE"] == "0" and "HOME" not in env and "hunter2" not in env["RAY_REDIS_PASSWORD"]


def test_bucket_follows_the_machine_not_the_libraries():
    fp = {"gpu.name": "H200", "gpu.count": "1", "cpu.count": "16", "version.sglang": "0.5.12"}
    assert fingerprint.bucket(fp) == fingerprint.bucket({**fp, "version.sglang": "0.5.15"})
    assert fingerprint.bucket(fp) != fingerprint.bucket({**fp, "gpu.count": "2"})
