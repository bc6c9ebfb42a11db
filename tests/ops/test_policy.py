"""The measured policy of "auto": one-time timing cache, shipped table, precedence, info().

Fake backends replace the long_conv registry for each test (monkeypatch restores it) and run
against a fake clock that each one advances by its own cost, so the timings are deterministic;
nothing here asserts a real duration. The cache lives in tmp_path, never in the home folder.
"""

import collections
import dataclasses
import importlib.util
import json
import logging
import time
import warnings
from pathlib import Path

import pytest
import torch

import seqlayers
from seqlayers import _info
from seqlayers.ops import dispatch, long_conv, policy, set_autotune, use_backend
from seqlayers.ops.dispatch import explain, resolve
from seqlayers.ops.policy import PolicyKey, ShippedTable, TimingCache

from .conftest import fake_backend

REPO = Path(__file__).resolve().parents[2]
SLOW, FAST = 1e-2, 1e-3  # fake seconds per call


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Cache in tmp_path, autotune and overrides from a clean environment, fresh log-once set."""
    monkeypatch.setenv("SEQLAYERS_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("SEQLAYERS_AUTOTUNE", "SEQLAYERS_CONV_BACKEND"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(policy, "_autotune", None)
    monkeypatch.setattr(policy, "_cache", None)
    monkeypatch.setattr(dispatch, "_LOGGED", set())
    return tmp_path / "cache" / "autotune.json"


class Fakes:
    """Fake long_conv backends on a fake clock; ``calls`` counts the calls of each."""

    def __init__(self, monkeypatch):
        self.now = 0.0
        self.calls = collections.Counter()
        self.monkeypatch = monkeypatch
        monkeypatch.setattr(policy, "_now", lambda: self.now)
        self.registry = {}
        monkeypatch.setitem(dispatch._REGISTRY, "long_conv", self.registry)
        monkeypatch.setitem(dispatch._OPS, "long_conv", dispatch._OPS["long_conv"])

    def add(self, name, cost, priority, **kwargs):
        """Register ``name`` taking ``cost(u)`` fake seconds per call."""

        def run(u, k, D):
            self.calls[name] += 1
            self.now += cost(u) if callable(cost) else cost
            return torch.zeros_like(u)

        self.registry[name] = fake_backend("long_conv", name, run, priority=priority, **kwargs)

    def use_table(self, entries, path):
        path.write_text(json.dumps({"format": 1, "op": "long_conv", "entries": entries}))
        op = dataclasses.replace(dispatch._OPS["long_conv"], table=ShippedTable(path))
        self.monkeypatch.setitem(dispatch._OPS, "long_conv", op)


@pytest.fixture
def fakes(monkeypatch):
    """"slow" (priority 10) and "fast" (priority 5): priority says slow, timing says fast."""
    fakes = Fakes(monkeypatch)
    fakes.add("slow", SLOW, priority=10)
    fakes.add("fast", FAST, priority=5)
    return fakes


def _args(L=1000, B=2, H=4):
    return torch.randn(B, H, L), torch.randn(H, L), None


def _timing_calls():
    return policy.WARMUP + policy.REPS


def test_bucket_and_key():
    assert [policy.bucket(n) for n in (0, 1, 2, 3, 1000, 1024, 1025)] == [1, 1, 2, 4, 1024, 1024, 2048]
    key = PolicyKey.of("long_conv", torch.device("cpu"), torch.bfloat16, 1000, 3 * 5)
    assert key == PolicyKey("long_conv", "cpu", "bfloat16", 1024, 16)
    assert key.cache_id() == "long_conv|cpu|bfloat16|L1024|W16"


def test_cache_dir_precedence(monkeypatch, tmp_path):
    assert policy.cache_path() == tmp_path / "cache" / "autotune.json"
    monkeypatch.delenv("SEQLAYERS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert policy.cache_dir() == tmp_path / "xdg" / "seqlayers"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert policy.cache_dir() == tmp_path / "home" / ".cache" / "seqlayers"


def test_autotune_is_opt_in(fakes, isolated, monkeypatch):
    assert not policy.autotune_enabled()
    assert resolve("long_conv", "auto", *_args())[0].name == "slow"  # priority order, nothing timed
    assert not fakes.calls and not isolated.exists()
    monkeypatch.setenv("SEQLAYERS_AUTOTUNE", "1")
    assert policy.autotune_enabled()
    set_autotune(False)  # the function beats the environment
    assert not policy.autotune_enabled()
    set_autotune(None)
    assert policy.autotune_enabled()


def test_timing_picks_the_fastest_and_writes_the_cache(fakes, isolated, caplog):
    set_autotune(True)
    with caplog.at_level(logging.INFO, logger="seqlayers.ops"):
        y = long_conv(*_args())
        assert resolve("long_conv", "auto", *_args())[0].name == "fast"
    assert y.shape == (2, 4, 1000)
    assert fakes.calls == {"slow": _timing_calls(), "fast": _timing_calls() + 1}
    assert caplog.text.count("'auto' timed") == 1 and "-> 'fast'" in caplog.text
    data = json.loads(isolated.read_text())
    record = data["versions"][policy.versions()]["long_conv|cpu|float32|L1024|W8"]
    assert record["backend"] == "fast" and set(record["ms"]) == {"slow", "fast"}
    assert record["ms"]["fast"] == pytest.approx(FAST * 1e3)
    assert not list(isolated.parent.glob(".autotune.json.*"))  # no temporary file left


def test_decision_is_read_by_a_fresh_cache_and_process(fakes, isolated):
    set_autotune(True)
    long_conv(*_args())
    assert TimingCache(isolated).lookup(PolicyKey("long_conv", "cpu", "float32", 1024, 8)) == "fast"
    policy._cache = None  # as a new process would start
    fakes.calls.clear()
    long_conv(*_args(L=600))  # same buckets: read from the file, nothing timed
    assert fakes.calls == {"fast": 1}


def test_real_sleep_picks_the_fast_backend(monkeypatch):
    fakes = Fakes(monkeypatch)
    monkeypatch.setattr(policy, "_now", time.perf_counter)
    fakes.add("sleepy", lambda u: time.sleep(0.02) or 0.0, priority=10)
    fakes.add("quick", 0.0, priority=5)
    set_autotune(True)
    assert resolve("long_conv", "auto", *_args())[0].name == "quick"


def test_buckets_separate_decisions(monkeypatch, isolated):
    fakes = Fakes(monkeypatch)
    fakes.add("short", lambda u: FAST if u.shape[-1] <= 512 else SLOW, priority=10)
    fakes.add("long", lambda u: SLOW if u.shape[-1] <= 512 else FAST, priority=5)
    fakes.add("wide", lambda u: 0.0 if u.shape[0] * u.shape[1] > 64 else 1.0, priority=0)
    set_autotune(True)
    assert resolve("long_conv", "auto", *_args(L=300))[0].name == "short"
    assert resolve("long_conv", "auto", *_args(L=3000))[0].name == "long"
    assert resolve("long_conv", "auto", *_args(L=3000, B=8, H=16))[0].name == "wide"
    assert resolve("long_conv", "auto", *_args(L=300))[0].name == "short"
    section = json.loads(isolated.read_text())["versions"][policy.versions()]
    assert {k: v["backend"] for k, v in section.items()} == {
        "long_conv|cpu|float32|L512|W8": "short",
        "long_conv|cpu|float32|L4096|W8": "long",
        "long_conv|cpu|float32|L4096|W128": "wide",
    }


def test_versions_are_part_of_the_key(fakes, isolated, monkeypatch):
    set_autotune(True)
    long_conv(*_args())
    monkeypatch.setattr(policy, "versions", lambda: "seqlayers 9.9, torch 9.9, triton 9.9")
    assert TimingCache(isolated).lookup(PolicyKey("long_conv", "cpu", "float32", 1024, 8)) is None
    policy._cache = None
    fakes.calls.clear()
    long_conv(*_args())  # an upgrade measures again, keeping the other versions' section
    assert fakes.calls["slow"] == _timing_calls()
    assert len(json.loads(isolated.read_text())["versions"]) == 2


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"format": 99, "versions": {}}'])
def test_corrupt_cache_is_ignored_and_replaced(fakes, isolated, content):
    isolated.parent.mkdir(parents=True)
    isolated.write_text(content)
    set_autotune(True)
    with pytest.warns(RuntimeWarning, match="ignoring the autotune cache"):
        assert long_conv(*_args()).shape == (2, 4, 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve("long_conv", "auto", *_args())[0].name == "fast"
    assert json.loads(isolated.read_text())["format"] == 1


def test_unwritable_cache_keeps_decisions_in_memory(fakes, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("SEQLAYERS_CACHE_DIR", str(tmp_path / "a_file" / "cache"))
    set_autotune(True)
    with pytest.warns(RuntimeWarning, match="cannot write the autotune cache"):
        long_conv(*_args())
    fakes.calls.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        long_conv(*_args(B=1, H=7))  # same buckets: the in-memory decision, no retiming
    assert fakes.calls == {"fast": 1}


def test_winner_that_refuses_falls_back_with_reason_logged_once(monkeypatch, caplog):
    fakes = Fakes(monkeypatch)
    fakes.add("slow", SLOW, priority=10)
    fakes.add("fast", FAST, priority=5,
              supports=lambda call: (call.length <= 600, "longer than 600"))
    set_autotune(True)
    assert resolve("long_conv", "auto", *_args(L=513))[0].name == "fast"
    with caplog.at_level(logging.INFO, logger="seqlayers.ops"):
        assert resolve("long_conv", "auto", *_args(L=1000))[0].name == "slow"
        assert resolve("long_conv", "auto", *_args(L=999))[0].name == "slow"
    assert caplog.text.count("longer than 600") == 1
    assert "picked by the timing cache" in caplog.text


def test_a_backend_failing_while_timed_is_skipped(fakes, caplog):
    def broken(u, k, D):
        raise RuntimeError("kernel exploded")

    fakes.registry["broken"] = fake_backend("long_conv", "broken", broken, priority=20)
    set_autotune(True)
    with caplog.at_level(logging.INFO, logger="seqlayers.ops"):
        assert resolve("long_conv", "auto", *_args())[0].name == "fast"
    assert "failed while timing: RuntimeError: kernel exploded" in caplog.text


def test_one_candidate_is_not_timed(isolated):
    set_autotune(True)  # the real registry: on the CPU only "torch" may be picked by "auto"
    assert resolve("long_conv", "auto", *_args())[0].name == "torch"
    assert not isolated.exists()


def test_explicit_context_and_env_override_the_policy(fakes, isolated, monkeypatch):
    set_autotune(True)
    long_conv(*_args(), backend="slow")
    with use_backend("slow"):
        long_conv(*_args())
    monkeypatch.setenv("SEQLAYERS_CONV_BACKEND", "slow")
    long_conv(*_args())
    assert fakes.calls == {"slow": 3} and not isolated.exists()  # nothing timed


def test_shipped_table(fakes, tmp_path, isolated):
    fakes.use_table([
        {"device": "NVIDIA*", "dtype": "float32", "L": 1024, "width": 8, "backend": "slow"},
        {"device": "C?U", "dtype": "float32", "L": 1024, "width": 4096, "backend": "slow"},
        {"device": "C?U", "dtype": "float32", "L": 1024, "width": 16, "backend": "fast"},
        {"device": "cpu", "dtype": "float32", "L": 4096, "width": 8, "backend": "gone"},
        {"device": "cpu", "dtype": "bfloat16"},  # malformed: ignored
    ], tmp_path / "policy.json")
    assert resolve("long_conv", "auto", *_args())[0].name == "fast"  # nearest width, case-insensitive
    assert resolve("long_conv", "auto", *_args(L=3000))[0].name == "slow"  # unknown backend: priority
    assert resolve("long_conv", "auto", *_args(L=100))[0].name == "slow"  # no entry: priority
    assert not fakes.calls and not isolated.exists()
    set_autotune(True)  # the timing cache comes first
    fakes.add("fast", SLOW, priority=5)  # no longer fast
    fakes.add("fastest", 0.0, priority=0)
    assert resolve("long_conv", "auto", *_args())[0].name == "fastest"


def test_malformed_table_warns_once(fakes, tmp_path):
    path = tmp_path / "policy.json"
    fakes.use_table([], path)
    path.write_text("{oops")
    with pytest.warns(RuntimeWarning, match="ignoring the backend table"):
        assert resolve("long_conv", "auto", *_args())[0].name == "slow"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve("long_conv", "auto", *_args())


def test_the_shipped_table_of_long_conv_is_valid():
    table = dispatch._OPS["long_conv"].table
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(table.entries, list)


def test_explain_never_times(fakes, isolated):
    set_autotune(True)
    decision = explain("long_conv", *_args())
    assert (decision.backend, decision.source) == ("slow", "priority")
    assert "first call times slow, fast" in decision.note
    assert not fakes.calls and not isolated.exists()
    long_conv(*_args())
    decision = explain("long_conv", *_args())
    assert (decision.backend, decision.source, decision.skipped) == ("fast", "timing cache", {})


def test_info_lists_decisions_without_timing(fakes, isolated):
    fakes.add("cuda_only", FAST, priority=50, supports=lambda call: (call.device.type == "cuda", "needs CUDA"))
    set_autotune(True)
    key = PolicyKey.of("long_conv", torch.device("cpu"), torch.float32, 4096, 16 * 768)
    policy.timing_cache().record(key, "fast", {"fast": 1.0, "slow": 2.0}, [16, 768, 4096])
    text = "\n".join(_info.info_lines())
    assert f"autotune on: timing cache {isolated}" in text
    assert "cpu float32  L=4096   -> fast (timing cache); skipped: cuda_only [1]" in text
    assert "cpu float32  L=1024   -> cuda_only" not in text
    assert "not timed yet: the first call times slow, fast" in text
    assert "[1] needs CUDA" in text
    assert "bfloat16 L=65536" in text
    assert not fakes.calls


def test_benchmark_writes_the_table(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_conv", REPO / "benchmarks" / "speed" / "conv.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps({"format": 1, "entries": [
        {"device": "NVIDIA A100*", "dtype": "float32", "L": 1024, "width": 8, "backend": "fft"}]}))
    row = dict(dtype="fp32", B=2, H=4, L=1000)
    raw = [
        dict(row, backend="torch", mode="fwd", ms=1.0),
        dict(row, backend="naive", mode="fwd+bwd", ms=0.1),  # never picked by "auto"
        dict(row, backend="torch", mode="fwd+bwd", ms=3.0),
        dict(row, backend="fft", mode="fwd", ms=2.0),
        dict(row, backend="fft", mode="fwd+bwd", ms=2.5),  # fwd+bwd decides
        dict(row, dtype="bf16", backend="torch", mode="fwd", ms="OOM"),
    ]
    bench.write_policy(raw, torch.device("cpu"), path)
    data = json.loads(path.read_text())
    assert data["op"] == "long_conv" and len(data["entries"]) == 2  # the A100 entry is kept
    table = ShippedTable(path)
    assert table.lookup(PolicyKey("long_conv", "cpu", "float32", 1024, 8)) == "fft"
    assert table.lookup(PolicyKey("long_conv", "cpu", "bfloat16", 1024, 8)) is None


def test_public_names():
    assert seqlayers.ops.set_autotune is policy.set_autotune
    assert seqlayers.ops.autotune_enabled() is False


def test_every_op_has_a_policy(monkeypatch):
    """linear_scan and vandermonde are keyed like long_conv; one candidate is never timed."""
    noop = fake_backend("linear_scan", "only", lambda a, b, h0: b, priority=1)
    monkeypatch.setitem(dispatch._REGISTRY, "linear_scan", {"only": noop})
    set_autotune(True)
    args = torch.zeros(1, 3, 2), torch.zeros(1, 3, 2), None
    assert resolve("linear_scan", "auto", *args)[0] is noop
    decision = explain("linear_scan", *args)
    assert (decision.backend, decision.source) == ("only", "priority")
    assert decision.key == PolicyKey("linear_scan", "cpu", "float32", 4, 2)


def test_scan_auto_decides_by_timing(monkeypatch, isolated):
    """With autotune on, "auto" for linear_scan times its candidates like long_conv's."""
    fakes = Fakes(monkeypatch)
    monkeypatch.setitem(dispatch._REGISTRY, "linear_scan", {})
    for name, cost, priority in (("slow", SLOW, 10), ("fast", FAST, 5)):
        def run(a, b, h0, cost=cost, name=name):
            fakes.calls[name] += 1
            fakes.now += cost
            return b
        dispatch._REGISTRY["linear_scan"][name] = fake_backend("linear_scan", name, run, priority=priority)
    set_autotune(True)
    args = torch.zeros(2, 100, 4), torch.zeros(2, 100, 4), None
    assert resolve("linear_scan", "auto", *args)[0].name == "fast"
    section = json.loads(isolated.read_text())["versions"][policy.versions()]
    assert section["linear_scan|cpu|float32|L128|W8"]["backend"] == "fast"
