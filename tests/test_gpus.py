import multiprocessing

import pytest

from harness.errors import LaunchError
from harness.run import gpus


@pytest.fixture(autouse=True)
def lock_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path / "locks"))


def test_offsets_rotate_the_host_gpus():
    assert gpus.rotated([0, 1], 1) == [1, 0]
    assert gpus.candidates([0, 1], 1, 1) == [[1]]
    assert gpus.candidates([0, 1, 2, 3, 4, 5, 6, 7], 4, 1) == [[1, 2, 3, 4]]  # the CVD=1,2,3,4 of the report
    assert gpus.candidates([0, 1], 3, 0) == []


def test_leases_are_disjoint_and_pack():
    with gpus.acquire(1, host=[0, 1, 2, 3]) as a, gpus.acquire(2, host=[0, 1, 2, 3]) as b:
        assert a.gpus == [0] and b.gpus == [1, 2]
        c = gpus.acquire(1, host=[0, 1, 2, 3])
        assert c.gpus == [3] and c.cuda_visible_devices == "3"
        with pytest.raises(LaunchError, match="no 1 free GPUs"):
            gpus.acquire(1, host=[0, 1, 2, 3], timeout_s=0.3, poll_s=0.1)
        c.release()


def test_offset_lease_waits_for_exactly_its_gpus():
    with gpus.acquire(1, host=[0, 1]) as a:
        assert a.gpus == [0]
        with gpus.acquire(1, offset=1, host=[0, 1]) as b:
            assert b.cuda_visible_devices == "1"


def _hold(q, host):
    lease = gpus.acquire(1, host=host)
    q.put(lease.gpus)
    import time

    time.sleep(1.5)


def test_leases_are_disjoint_across_processes():
    q = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_hold, args=(q, [0, 1, 2])) for _ in range(3)]
    for p in procs:
        p.start()
    got = sorted(q.get(timeout=20)[0] for _ in procs)
    for p in procs:
        p.join()
    assert got == [0, 1, 2]


def test_too_many_gpus_is_a_clear_error():
    with pytest.raises(LaunchError, match="needs 4 GPUs, this host shows 2"):
        gpus.acquire(4, host=[0, 1])


def test_visible_gpus_from_env(monkeypatch):
    monkeypatch.setenv(gpus.GPUS_ENV, "2,3")
    assert gpus.visible_gpus() == [2, 3]


def test_memory_that_does_not_come_back_is_a_leak_naming_the_holders(monkeypatch):
    monkeypatch.setattr(gpus, "_smi", lambda q, kind="--query-gpu": [["4242", "python3", "900"]])
    leaks = gpus.memory_leaks({0: 1000, 1: 1000}, {0: 1100, 1: 3000})
    assert leaks == ["GPU 1: 1000 -> 3000 MiB after the scenario; held by pid 4242 python3 (900 MiB)"]
    assert gpus.memory_leaks({0: 1000}, {0: 1000}) == []


def test_memory_freed_by_an_exiting_process_is_waited_for_not_called_a_leak(monkeypatch):
    readings = iter([{0: 2100}, {0: 2100}, {0: 1000}])  # an exiting actor frees its context a moment later
    monkeypatch.setattr(gpus, "memory_used_mib", lambda g: next(readings))
    assert gpus.memory_after({0: 1000}, [0], settle_s=5, poll_s=0) == {0: 1000}


def test_memory_still_held_after_the_settle_time_is_returned_as_is(monkeypatch):
    monkeypatch.setattr(gpus, "memory_used_mib", lambda g: {0: 3000})
    after = gpus.memory_after({0: 1000}, [0], settle_s=0.05, poll_s=0.01)
    assert gpus.memory_leaks({0: 1000}, after)[0].startswith("GPU 0: 1000 -> 3000 MiB")
