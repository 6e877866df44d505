"""kerasarch.benchmark: the interleaving and ratio arithmetic, the auto-precision cache, the CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from kerasarch import cli_bench
from kerasarch.benchmark import core, precision, timing


def test_spread_median_minmax_and_quartiles():
    spread = timing.Spread.of([4.0, 1.0, 3.0, 2.0, 10.0])
    assert (spread.median, spread.minimum, spread.maximum) == (3.0, 1.0, 10.0)
    assert (spread.q1, spread.q3, spread.rounds) == (2.0, 4.0, 5)
    assert spread.format(2, "x") == "3.00x [1.00-10.00]"
    with pytest.raises(ValueError, match="values"):
        timing.Spread.of([])
    with pytest.raises(ValueError, match="finite"):
        timing.Spread.of([1.0, float("nan")])


def test_ratios_are_taken_round_by_round_before_the_median():
    # The machine halves its speed in round 2: per-round ratios stay 2.0, while the ratio of
    # the medians of the rates would not be.
    rates = {"ref": [100.0, 50.0, 100.0], "fast": [200.0, 100.0, 200.0], "slow": [50.0, 50.0, 25.0]}
    result = timing.ratios(rates, "ref")
    assert set(result) == {"fast", "slow"}
    assert result["fast"].median == result["fast"].minimum == result["fast"].maximum == 2.0
    assert (result["slow"].median, result["slow"].minimum, result["slow"].maximum) == (0.5, 0.25, 1.0)
    with pytest.raises(ValueError, match="reference"):
        timing.ratios(rates, "nope")
    with pytest.raises(ValueError, match="rounds"):
        timing.ratios({"ref": [1.0, 2.0], "other": [1.0]}, "ref")


def test_interleave_rotates_the_order_and_divides_work_by_time():
    now, order = [0.0], []

    def clock():
        return now[0]

    def runner(name, seconds):
        def run():
            order.append(name)
            now[0] += seconds
        return run

    contenders = [timing.Contender("a", runner("a", 0.5), work=10),
                  timing.Contender("b", runner("b", 0.25), work=10)]
    rates = timing.interleave(contenders, rounds=2, target_seconds=0.5, clock=clock)
    assert rates == {"a": [20.0, 20.0], "b": [40.0, 40.0]}
    timed = order[6:]  # calibration: 3 calls of a (2 warm-up), 3 of b; then 1 call of a, 2 of b a turn
    assert timed == ["a", "b", "b", "b", "b", "a"]  # round 2 starts with b
    with pytest.raises(ValueError, match="rounds"):
        timing.interleave(contenders, rounds=0)
    with pytest.raises(ValueError, match="differ"):
        timing.interleave([contenders[0], contenders[0]], rounds=1)


def test_cli_choices_match_the_library():
    assert cli_bench.PRECISIONS == core.PRECISIONS
    assert cli_bench.RUNTIME_CHOICES == core.RUNTIME_CHOICES
    assert cli_bench.AGAINST == core.AGAINST


def test_best_precision_is_measured_once_cached_and_keyed(monkeypatch, cache_dir):
    calls = []

    def fake_measure(name, batch_size, image_size=None):
        calls.append((name, batch_size))
        median = 1.5 if batch_size == 16 else 0.8
        return timing.Spread.of([median, median])

    monkeypatch.setattr(precision, "measure", fake_measure)
    assert precision.best_precision("lenet5", 16) == "bf16"
    path = cache_dir / precision.CACHE_FILE
    assert precision.cache_path() == path
    entries = json.loads(path.read_text())
    (key, entry), = entries.items()
    assert key.startswith("lenet5|batch 16|") and "cores" in key and "tf 2." in key
    assert entry["precision"] == "bf16" and entry["bf16_over_fp32"]["median"] == 1.5
    assert precision.best_precision("lenet5", 16) == "bf16"  # reused
    assert calls == [("lenet5", 16)]
    assert precision.best_precision("lenet5", 1) == "fp32"  # another batch: measured
    assert calls == [("lenet5", 16), ("lenet5", 1)]
    machine = {"cpu": "another CPU", "cores": 64, "tensorflow": "9.9", "arch": "x", "keras": "3"}
    monkeypatch.setattr("kerasarch.benchmark.runners.machine", lambda: machine)
    assert precision.best_precision("lenet5", 16) == "bf16"  # another machine: measured
    assert len(calls) == 3 and len(json.loads(path.read_text())) == 3
    precision.best_precision("lenet5", 16, remeasure=True)
    assert len(calls) == 4


def test_best_precision_refuses_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        precision.best_precision("lenet5", 0)
    with pytest.raises(ValueError, match="Unknown model name"):
        precision.best_precision("lenet6", 1)


def test_benchmark_cli_prints_ratios_spread_and_mfu(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "kerasarch", "benchmark", "lenet5", "--batch-size", "4", "--rounds", "2",
         "--runtime", "tf", "--seconds", "0.05", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "lenet5 at batch 4, 32x32x1, fp32, 2 interleaved rounds" in text
    assert re.search(r"kerasarch tf fp32\s+reference\s+[\d.]+ \[[\d.]+-[\d.]+\]\s+[\d.]+ \[", text)
    assert re.search(r"kerasarch tf fp32 training\s+-\s+[\d.]+ \[[\d.]+-[\d.]+\]", text)
    assert re.search(r"matmul 2048 fp32\s+-\s+[\d.]+ GFLOP/s \[", text)
    assert "median [min-max] over rounds" in text
    report = json.loads(out.read_text())
    rows = {row["name"]: row for row in report["rows"]}
    assert rows["kerasarch tf fp32"]["ratio"]["median"] == 1.0
    assert rows["kerasarch tf fp32"]["rate"]["rounds"] == 2
    assert 0 < rows["kerasarch tf fp32"]["mfu"]["median"] < 1
    assert report["machine"]["cores"] >= 1 and report["flops_per_image"] > 0


def test_benchmark_cli_against_torch_without_pytorch(monkeypatch, capsys):
    from kerasarch import cli
    from kerasarch.benchmark import runners

    monkeypatch.setattr(runners, "torch_available", lambda: False)
    assert cli.main(["benchmark", "lenet5", "--against", "torch"]) == 2
    error = capsys.readouterr().err
    assert "--against" in error and "PyTorch" in error
