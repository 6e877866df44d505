"""kerasarch.benchmark: the interleaving and ratio arithmetic, the auto-precision cache, the CLI."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest

import kerasarch
from kerasarch import cli_bench
from kerasarch.benchmark import core, precision, timing, torch_peer, torch_worker


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


def test_interleave_takes_calls_and_seconds_from_a_contender_timed_elsewhere():
    asked = []

    def measure(seconds):
        asked.append(seconds)
        return 8, 2.0  # 8 calls in 2 s, as the other process measured them

    elsewhere = timing.Contender("elsewhere", None, work=4, measure=measure)
    here = timing.Contender("here", lambda: None, work=1)
    rates = timing.interleave([here, elsewhere], rounds=3, target_seconds=0.01)
    assert rates["elsewhere"] == [16.0, 16.0, 16.0] and asked == [0.01] * 3  # never calibrated
    with pytest.raises(ValueError, match="exactly one"):
        timing.Contender("both", lambda: None, 1, measure=measure)
    with pytest.raises(ValueError, match="exactly one"):
        timing.Contender("neither", None, 1)


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


# The PyTorch peer. This environment has no PyTorch: the worker's protocol loop runs here with
# a numpy model, and its process runs under a stand-in `torch` / `torchvision` written below
# (numpy-backed, on the worker's path only), through the same code path as the real libraries.

FAKE_TORCH = '''
import contextlib, os
import numpy as np

__version__ = "0.0+fake"
bfloat16 = "bfloat16"


class Tensor(np.ndarray):
    def view(self, *shape):
        return self.reshape(shape) if shape and isinstance(shape[0], int) else super().view(*shape)

    def permute(self, *axes):
        return self.transpose(axes)

    def float(self):
        return self.astype(np.float32)

    def numpy(self):
        return np.asarray(self)


def tensor(data):
    return np.asarray(data, np.float32).view(Tensor)


def from_numpy(array):
    return array.view(Tensor)


def set_num_threads(count):
    with open(os.environ["FAKE_TORCH_LOG"], "a") as log:
        log.write(f"threads {count}\\n")


def inference_mode():
    return contextlib.nullcontext()


def autocast(device, dtype, enabled=True):
    return contextlib.nullcontext()
'''

FAKE_TORCHVISION = '''
__version__ = "0.0+fake"
'''

FAKE_TORCHVISION_MODELS = '''
import time


class Mean:
    def eval(self):
        return self

    def __call__(self, images):
        time.sleep(0.002)
        return images.mean(axis=(2, 3))


def list_models(module=None):
    return ["lenet5"]


def get_model(name):
    return Mean()
'''


@pytest.fixture
def fake_torch_python(tmp_path, monkeypatch):
    """A "python with PyTorch": this python, with the stand-in torch on its path (a shell wrapper)."""
    site = tmp_path / "site"
    (site / "torch").mkdir(parents=True)
    (site / "torchvision" / "models").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text(FAKE_TORCH)
    (site / "torchvision" / "__init__.py").write_text(FAKE_TORCHVISION + "from torchvision import models\n")
    (site / "torchvision" / "models" / "__init__.py").write_text(FAKE_TORCHVISION_MODELS)
    wrapper = tmp_path / "bin" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{site}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("FAKE_TORCH_LOG", str(tmp_path / "torch.log"))
    monkeypatch.delenv(torch_peer.ENV, raising=False)
    return wrapper


def test_worker_protocol_loop_loads_runs_and_refuses():
    made = []

    def make(name, batch_size, height, width, precision, threads):
        if name != "tiny":
            return None
        made.append((batch_size, height, width, precision, threads))
        return lambda: made.append("call")

    now = [0.0]

    def clock():
        now[0] += 0.25  # each reading a quarter second later
        return now[0]

    lines = [json.dumps(r) for r in (
        {"cmd": "load", "id": "a", "model": "tiny", "batch_size": 2, "height": 8, "width": 9,
         "precision": "bf16", "threads": 3},
        {"cmd": "run", "id": "a", "seconds": 1.0},
        {"cmd": "load", "id": "b", "model": "nope", "batch_size": 1, "height": 8, "width": 8},
        {"cmd": "load", "id": "c", "model": "tiny", "batch_size": 0, "height": 8, "width": 8},
        {"cmd": "run", "id": "b", "seconds": 1.0},
        {"cmd": "unload", "id": "a"},
        {"cmd": "run", "id": "a", "seconds": 1.0},
        {"cmd": "dance"},
        {"cmd": "quit"},
        {"cmd": "run", "id": "a", "seconds": 1.0},  # after quit: never read
    )] + ["not json"]
    out = io.StringIO()
    torch_worker.serve(lines, out, make, clock)
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(replies) == 9
    assert replies[0] == {"ok": True, "id": "a", "seconds": 0.25}
    assert made[:3] == [(2, 8, 9, "bf16", 3), "call", "call"]  # built, then warmed up twice
    # the clock advances 0.25 per reading: calls until 1.0 s measured in the worker
    assert replies[1] == {"ok": True, "id": "a", "calls": 4, "seconds": 1.0}
    assert replies[2] == {"ok": False, "error": "unknown_model",
                          "message": "torchvision / timm have no model named 'nope'."}
    assert replies[3]["error"] == "ValueError" and "batch_size" in replies[3]["message"]
    assert "No model loaded as 'b'" in replies[4]["message"]
    assert replies[5] == {"ok": True, "id": "a"}
    assert not replies[6]["ok"] and "No model loaded as 'a'" in replies[6]["message"]
    assert "Unknown command 'dance'" in replies[7]["message"]
    assert replies[8] == {"ok": True, "quit": True}


def test_torch_worker_process_times_a_contender_and_always_ends(fake_torch_python, tmp_path):
    with torch_peer.TorchWorker(str(fake_torch_python), threads=3) as worker:
        assert worker.versions == {"torch": "0.0+fake", "torchvision": "0.0+fake", "timm": None}
        note = worker.load("x", "resnet999", 2, 16, 16, "fp32")
        assert note == "torchvision / timm have no model named 'resnet999'."
        assert worker.load("fp32", "lenet5", 2, 16, 16, "fp32") is None
        local = timing.Contender("local", lambda: None, work=2)
        rates = timing.interleave([local, worker.contender("torch", "fp32", 2)], rounds=2,
                                  target_seconds=0.05)
        # ~2 ms a call in the worker, 2 images a call: about 1,000 images/s, measured there
        assert len(rates["torch"]) == 2 and all(10 < r < 1000 for r in rates["torch"])
        process = worker.process
    assert process.returncode == 0  # quit, not killed
    assert (tmp_path / "torch.log").read_text() == "threads 3\n"
    with pytest.raises(KeyboardInterrupt):
        with torch_peer.TorchWorker(str(fake_torch_python)) as worker:
            # its own process group: a Ctrl-C in the terminal reaches the parent, which ends it
            assert os.getpgid(worker.process.pid) != os.getpgid(0)
            raise KeyboardInterrupt
    assert worker.process.poll() is not None  # ended on the way out
    with pytest.raises(RuntimeError, match="exited"):
        worker.measure("fp32", 0.1)


def test_benchmark_cli_against_torch_in_a_worker_process(fake_torch_python, tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "kerasarch", "benchmark", "lenet5", "--against", "torch", "--torch-python",
         str(fake_torch_python), "--rounds", "2", "--seconds", "0.05", "--no-progress", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"torch lenet5 fp32\s+reference\s+[\d.]+ \[", done.stdout)
    assert re.search(r"torch lenet5 bf16\s+[\d.]+x \[[\d.]+-[\d.]+\]", done.stdout)
    assert re.search(r"kerasarch tf fp32\s+[\d.]+x \[", done.stdout)
    assert "in a separate process" in done.stdout and "0.0+fake" in done.stdout
    rows = {row["name"]: row for row in json.loads(out.read_text())["rows"]}
    bf16 = rows["torch lenet5 bf16"]
    assert bf16["runtime"] == "torch" and bf16["role"] == "peer" and bf16["rate"]["rounds"] == 2
    threads = (tmp_path / "torch.log").read_text().split()
    assert threads[0] == "threads" and int(threads[1]) >= 1  # TensorFlow's count, passed on


def test_benchmark_against_torch_names_every_way_to_find_pytorch(monkeypatch, capsys):
    from kerasarch import cli

    monkeypatch.delenv(torch_peer.ENV, raising=False)
    monkeypatch.setattr(torch_peer, "installed_here", lambda: False)
    assert cli.main(["benchmark", "lenet5", "--against", "torch"]) == 2
    error = capsys.readouterr().err
    assert "--against" in error and "--torch-python" in error and torch_peer.ENV in error
    assert "install them in this environment" in error
    monkeypatch.setenv(torch_peer.ENV, "/nonexistent/python")
    assert cli.main(["benchmark", "lenet5", "--against", "torch"]) == 2
    assert f"Invalid value for {torch_peer.ENV}: '/nonexistent/python' is not an executable" in \
        capsys.readouterr().err


def test_torch_python_without_pytorch_is_refused(capsys):
    if torch_peer.installed_here():
        pytest.skip("this python has PyTorch")
    from kerasarch import cli

    assert cli.main(["benchmark", "lenet5", "--against", "torch", "--torch-python", sys.executable]) == 2
    error = capsys.readouterr().err
    assert "Invalid value for --torch-python: torch and torchvision do not import in" in error
    assert "ModuleNotFoundError" in error


def test_every_declared_twin_resolves_to_a_keras_applications_builder():
    """`--against keras` finds each twin, MobileNetV3Small/Large (package level only) included."""
    from kerasarch.benchmark import runners

    twins = [n for n in kerasarch.list_models() if kerasarch.model_info(n).twin]
    assert {"mobilenet_v3_small", "mobilenet_v3_large", "resnet50"} <= set(twins)
    for name in twins:
        builder, preprocess = runners.twin_builder(name)
        assert callable(builder) and callable(preprocess), name
        assert builder.__name__ == kerasarch.model_info(name).twin.rsplit(".", 1)[1], name


def _inference_script():
    """benchmarks/inference.py as a module (a script, not part of the package)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "inference.py"
    spec = importlib.util.spec_from_file_location("inference_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_inference_results_keep_the_sections_a_run_did_not_measure():
    inference = _inference_script()
    spread = {"median": 1.0, "minimum": 0.9, "maximum": 1.1, "q1": 1.0, "q3": 1.0, "rounds": 3}
    mfu = {"model": "resnet50", "batch": 16, "flops_per_image": 7.76e9, "matmul_size": 4096,
           "mfu_fp32": spread, "matmul_gflops_fp32": spread, "mfu_bf16": spread, "matmul_gflops_bf16": spread}
    # the results file as written before sections carried their own run: one command on top
    old = {"command": "python benchmarks/inference.py --sections mfu,runtimes", "machine": {"cpu": "A"},
           "machine_line": "A, 2 cores", "rounds": 7, "sections": ["mfu", "runtimes"], "mfu": mfu,
           "runtimes": []}
    twins = [{"model": "resnet50", "twin": "keras.applications ResNet50", "batch": 1,
              "ratio_fp32": spread, "ratio_bf16": spread}]
    run = {"command": "python benchmarks/inference.py --sections twins", "machine": {"cpu": "B"},
           "machine_line": "B, 2 cores", "rounds": 5, "date": "2026-11-25"}
    merged = inference.merge({"sections": ["twins"], "runs": {"twins": run}, "twins": twins}, old)
    assert merged["sections"] == ["twins", "mfu", "runtimes"]
    assert (merged["twins"], merged["mfu"], merged["runtimes"]) == (twins, mfu, [])
    assert merged["runs"]["twins"] == run
    assert merged["runs"]["mfu"]["command"] == merged["runs"]["runtimes"]["command"] == old["command"]
    assert merged["runs"]["mfu"]["rounds"] == 7
    text = inference.markdown(merged)
    assert "## kerasarch / keras.applications twin (batch 1," in text
    order = [text.index(part) for part in ("--sections twins`", "## Model FLOP", "--sections mfu,runtimes`")]
    assert order == sorted(order)  # each section's own run line, under its header
    # measured again, a section replaces its old figures and run; the others stay
    again = {"sections": ["mfu"], "runs": {"mfu": run}, "mfu": {**mfu, "batch": 8}}
    remerged = inference.merge(again, merged)
    assert remerged["mfu"]["batch"] == 8 and remerged["runs"]["mfu"] == run
    assert remerged["twins"] == twins and remerged["runs"]["runtimes"]["command"] == old["command"]
    assert inference.merge(again, None) is again
