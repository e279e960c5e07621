"""Building the results cache or an executor is free: nothing is created, connected or
started until ``open()`` (or ``with``); using one before that says how to open it."""

from __future__ import annotations

import numpy as np
import pytest

from restorebench.core.errors import UserError
from restorebench.run.cache import NoCache, ResultCache
from restorebench.run.units import UnitResult


def _result(unit_id: str) -> UnitResult:
    return UnitResult(unit_id=unit_id, status="ok", metrics={"psnr": 31.5}, stats={"psnr": np.array([1.0, 2.0])})


def test_a_result_cache_creates_nothing_until_opened(tmp_path):
    path = tmp_path / "not" / "yet" / "results.sqlite"
    cache = ResultCache(path)
    assert not (tmp_path / "not").exists()
    with pytest.raises(RuntimeError, match=r"not open: call open\(\) first, or use `with"):
        cache.get_many(["a"])
    with pytest.raises(RuntimeError, match=r"call open\(\)"):
        cache.put_many([_result("a")])
    cache.close()  # nothing to close
    assert not (tmp_path / "not").exists()

    with ResultCache(path) as opened:
        assert path.is_file()
        opened.put_many([_result("a")])
        found = opened.get_many(["a", "b"])
    assert list(found) == ["a"] and found["a"].metrics == {"psnr": 31.5} and found["a"].cached
    with pytest.raises(RuntimeError, match="not open"):  # `with` closed it
        opened.get_many(["a"])
    assert ResultCache(path).open().get_many(["a"])["a"].stats["psnr"].tolist() == [1.0, 2.0]


def test_a_cache_that_is_a_directory_is_refused_when_opened_not_when_built(tmp_path):
    cache = ResultCache(tmp_path)
    with pytest.raises(UserError, match="is a directory"):
        cache.open()


def test_no_cache_opens_as_the_cache_does():
    with NoCache() as cache:
        assert cache.open() is cache and cache.get_many(["a"]) == {}


def test_a_ray_executor_connects_to_nothing_until_opened(monkeypatch):
    import ray

    from restorebench.run import ray_runtime
    from restorebench.run.executors import make_executor
    from restorebench.run.ray_executor import RayExecutor

    calls = []

    def connect(address, *, num_cpus=None):
        calls.append((address, num_cpus))
        return False  # joined a runtime this call did not start: close() leaves it alone

    def no_init(*args, **kwargs):
        raise AssertionError("ray.init was called")

    monkeypatch.setattr(ray_runtime, "connect", connect)
    monkeypatch.setattr(ray, "init", no_init)
    was_initialized = ray.is_initialized()
    executor = make_executor("ray", address="ray://head:10001")
    plain = RayExecutor(num_cpus=2)
    assert isinstance(executor, RayExecutor) and calls == [] and ray.is_initialized() == was_initialized
    with pytest.raises(RuntimeError, match=r"Ray executor is not open: call open\(\)"):
        plain.parallelism()
    with pytest.raises(RuntimeError, match="not open"):
        next(plain.execute([], {}))
    plain.close()  # nothing to close
    assert executor.open() is executor and executor.open() is executor  # a second open() is a no-op
    assert calls == [("ray://head:10001", None)]
    executor.close()
    with RayExecutor(num_cpus=2) as opened:
        assert calls[-1] == (None, 2) and opened._opened() is ray
    with pytest.raises(RuntimeError, match="not open"):
        opened.parallelism()


def test_building_a_ray_executor_does_not_import_or_start_ray():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from restorebench.run.executors import make_executor\n"
        "make_executor('ray', num_cpus=1)\n"
        "started = 'ray' in sys.modules and sys.modules['ray'].is_initialized()\n"
        "print('started' if started else 'free')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "free", out.stderr
