"""`benchmark(name, ...)`: a kerasarch model in each runtime beside its peers, interleaved in one process."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

from kerasarch.benchmark import runners, timing, torch_peer
from kerasarch.extras import MissingExtraError

PRECISIONS = ("fp32", "bf16", "auto")
RUNTIME_CHOICES = (*runners.RUNTIMES, "all")
AGAINST = ("keras", "torch")
# Training FLOPs per image: forward plus backward, the backward counted as twice the forward
# (gradients with respect to activations and to weights), the usual convention.
TRAINING_FLOPS_FACTOR = 3


@dataclasses.dataclass
class Row:
    """One contender's figures over the rounds."""

    name: str
    role: str  # "kerasarch", "peer" or "yardstick"
    runtime: str
    precision: str
    kind: str  # "inference", "training" or "matmul"
    rate: timing.Spread  # images/s (FLOP/s for the matmul)
    ratio: timing.Spread | None = None  # over the reference of its kind, round by round
    mfu: timing.Spread | None = None  # model FLOP/s over the matmul FLOP/s of its precision


@dataclasses.dataclass
class BenchmarkResult:
    """What `benchmark` measured; `format_result` prints it, `as_dict` gives JSON data."""

    model: str
    batch_size: int
    image_size: tuple[int, int, int]
    precision: str
    runtime: str
    against: str
    rounds: int
    machine: dict
    flops_per_image: int
    reference: str
    training_reference: str | None
    rows: list[Row]
    fastest: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    rates: dict[str, list[float]] = dataclasses.field(default_factory=dict)  # per round, raw

    def row(self, name: str) -> Row:
        """The row of a contender, by name."""
        return next(r for r in self.rows if r.name == name)

    def as_dict(self) -> dict:
        """The result as plain JSON data."""
        return dataclasses.asdict(self)


def _check(name: str, batch_size: int, precision: str, runtime: str, against: str, rounds: int) -> None:
    from kerasarch import registry

    registry.model_info(name)
    for argument, value, valid in (("precision", precision, PRECISIONS),
                                   ("runtime", runtime, RUNTIME_CHOICES), ("against", against, AGAINST)):
        if value not in valid:
            raise ValueError(f"Invalid value for argument `{argument}`: {value!r}. Expected one of {valid}.")
    for argument, value in (("batch_size", batch_size), ("rounds", rounds)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"Invalid value for argument `{argument}`: {value!r}. Expected an integer >= 1.")


class _Plan:
    """The contenders of one benchmark, with what each row is."""

    def __init__(self, batch_size: int, images: np.ndarray):
        self.batch_size, self.images = batch_size, images
        self.contenders: list[timing.Contender] = []
        self.rows: dict[str, dict] = {}
        self.notes: list[str] = []

    def add(self, name: str, predict, role: str, runtime: str, precision: str, kind: str = "inference",
            run=None, work: float | None = None, measure=None) -> None:
        if measure is None:
            run = run or (lambda: predict(self.images))
        self.contenders.append(timing.Contender(name, run, work or self.batch_size, kind, measure))
        self.rows[name] = {"role": role, "runtime": runtime, "precision": precision, "kind": kind}


def _kerasarch_runtimes(plan: _Plan, name: str, base, runtimes, precision: str, image_size, folder: Path):
    for runtime in runtimes:
        chosen = precision if precision in runners.runtime_precisions(runtime) else "fp32"
        if chosen != precision:
            plan.notes.append(f"{runtime}: no {precision} on this machine; measured in fp32.")
        try:
            if runtime == "tf":
                model = base if chosen == "fp32" else runners.build(name, image_size, chosen, base)
                predict = runners.tf_predict(model)
            elif runtime == "litert":
                predict = runners.litert_predict(base, plan.batch_size, folder)
            elif runtime == "onnx":
                predict = runners.onnx_predict(base, folder)
            else:
                predict = runners.openvino_predict(base, folder, chosen)
        except MissingExtraError as error:
            if len(runtimes) == 1:
                raise
            plan.notes.append(f"{runtime}: skipped; {error}")
            continue
        plan.add(f"kerasarch {runtime} {chosen}", predict, "kerasarch", runtime, chosen)
        if runtime == "tf":
            trained = runners.build(name, image_size, chosen, base)
            plan.add(f"kerasarch tf {chosen} training", None, "kerasarch", "tf", chosen, "training",
                     run=runners.tf_train_step(trained, plan.images))


def _peers(plan: _Plan, name: str, image_size, precision: str, training: bool) -> None:
    for chosen in dict.fromkeys((precision, "fp32")):
        pair = runners.twin(name, image_size, chosen)
        if pair is None:
            continue
        label = f"{runners.twin_label(name)} {chosen}"
        plan.add(label, runners.tf_predict(*pair), "peer", "tf", chosen)
        if training and chosen == precision:
            plan.add(f"{label} training", None, "peer", "tf", chosen, "training",
                     run=runners.tf_train_step(pair[0], plan.images, pair[1]))
    if not any(r["role"] == "peer" for r in plan.rows.values()):
        plan.notes.append(f"{name} declares no keras.applications twin: ratios are to kerasarch tf fp32.")


def _torch_peers(plan: _Plan, worker: torch_peer.TorchWorker, name: str, image_size) -> None:
    """The torchvision / timm model of this name in fp32 and bf16 (autocast), timed by the worker."""
    height, width, _ = runners.input_shape(name, image_size)
    versions = ", ".join(f"{k} {v}" for k, v in worker.versions.items() if v)
    plan.notes.append(f"torch peers: {versions}, {worker.threads} threads, in a separate process "
                      f"({worker.python}), timed there, alternating with the others round by round.")
    for chosen in ("fp32", "bf16"):
        note = worker.load(chosen, name, plan.batch_size, height, width, chosen)
        if note is not None:
            plan.notes += [note] if note not in plan.notes else []  # an unknown name: once
            continue
        plan.add(f"torch {name} {chosen}", None, "peer", "torch", chosen,
                 measure=lambda seconds, key=chosen: worker.measure(key, seconds))


def benchmark(
    name: str,
    batch_size: int = 1,
    precision: str = "fp32",
    runtime: str = "tf",
    against: str = "keras",
    rounds: int = 5,
    image_size: int | None = None,
    target_seconds: float = 0.5,
    matmul_size: int = 2048,
    progress: bool = True,
    torch_python: str | None = None,
) -> BenchmarkResult:
    """Measures a kerasarch model's images/s beside its peers, interleaved round by round.

    Contenders: the model in each runtime asked for (and its training step for `"tf"`), its
    keras.applications twin (`against="keras"`, where the model declares one) or the
    torchvision / timm model of the same name in fp32 and bf16 (`against="torch"`, run by a
    python that has PyTorch, in a separate process: `torch_peer`), and a `matmul_size`
    square matrix product per precision, the yardstick of model FLOP utilization (MFU).
    Random weights and random pixels; speed does not depend on them.

    Args:
        name: A registered model name.
        batch_size: Images per call.
        precision: `"fp32"`, `"bf16"` (mixed_bfloat16; OpenVINO's bf16 hint where the CPU has
            it; ONNX Runtime and LiteRT stay fp32) or `"auto"` (`best_precision`).
        runtime: `"tf"`, `"litert"`, `"onnx"`, `"openvino"` or `"all"`.
        against: `"keras"` or `"torch"`.
        rounds: Timed rounds; ratios are summarized over them.
        image_size: Square input size; default the model's native size.
        target_seconds: About how long each contender runs per round.
        matmul_size: Side of the yardstick matrix product.
        progress: Show a progress bar on stderr.
        torch_python: For `against="torch"`: a python with torch and torchvision; default
            `$KERASARCH_TORCH_PYTHON`, else this python if they are installed here.

    Returns:
        The `BenchmarkResult`.

    Raises:
        ValueError: Bad arguments, or `against="torch"` without a python that has PyTorch.
        MissingExtraError: A single runtime asked for whose package is not installed.
    """
    _check(name, batch_size, precision, runtime, against, rounds)
    with contextlib.ExitStack() as stack:
        worker = None
        if against == "torch":  # first: a missing PyTorch fails before anything is built
            python, source = torch_peer.find_python(torch_python)
            worker = stack.enter_context(torch_peer.TorchWorker(python, source, torch_peer.tf_threads()))
        return _measure(name, batch_size, precision, runtime, against, rounds, image_size, target_seconds,
                        matmul_size, progress, worker)


def _measure(name, batch_size, precision, runtime, against, rounds, image_size, target_seconds,
             matmul_size, progress, worker) -> BenchmarkResult:
    from tqdm.auto import tqdm

    from kerasarch import analysis
    from kerasarch.benchmark.precision import best_precision

    shape = runners.input_shape(name, image_size)
    resolved = best_precision(name, batch_size, image_size) if precision == "auto" else precision
    runtimes = runners.RUNTIMES if runtime == "all" else (runtime,)
    images = np.random.default_rng(0).uniform(0, 255, (batch_size, *shape)).astype(np.float32)
    plan = _Plan(batch_size, images)
    if precision == "auto":
        plan.notes.append(f"precision auto: {resolved} (measured and cached for this model, batch, machine).")
    base = runners.build(name, image_size)
    flops = analysis.flops(base)
    with tempfile.TemporaryDirectory() as tmp:
        _kerasarch_runtimes(plan, name, base, runtimes, resolved, image_size, Path(tmp))
        if worker is not None:
            _torch_peers(plan, worker, name, image_size)
        else:
            _peers(plan, name, image_size, resolved, training="tf" in runtimes)
        peers = [n for n, r in plan.rows.items() if r["role"] == "peer" and r["kind"] == "inference"]
        reference = next((n for n in peers if n.endswith(" fp32")), "kerasarch tf fp32")
        if reference not in plan.rows:
            plan.add(reference, runners.tf_predict(base), "kerasarch", "tf", "fp32")
        used = dict.fromkeys(r["precision"] for r in plan.rows.values() if r["role"] == "kerasarch")
        for chosen in used:
            plan.add(f"matmul {matmul_size} {chosen}", None, "yardstick", "tf", chosen, "matmul",
                     run=runners.matmul(chosen, matmul_size), work=2 * matmul_size ** 3)
        with tqdm(total=rounds * len(plan.contenders), desc=f"benchmark {name}", unit="turn",
                  disable=not progress, file=sys.stderr, leave=False) as bar:
            rates = timing.interleave(plan.contenders, rounds, target_seconds, progress=bar.update)
    training = [n for n, r in plan.rows.items() if r["kind"] == "training" and r["role"] == "peer"]
    result = BenchmarkResult(
        name, batch_size, shape, resolved, runtime, against, rounds, runners.machine(), flops,
        reference, training[0] if training else None, [], notes=plan.notes, rates=rates)
    result.rows = [_row(n, plan.rows[n], rates, result, matmul_size) for n in plan.rows]
    if runtime == "all":
        ours = [r for r in result.rows if r.role == "kerasarch" and r.kind == "inference"]
        result.fastest = max(ours, key=lambda r: r.ratio.median).name
    return result


def _row(name: str, meta: dict, rates: dict, result: BenchmarkResult, matmul_size: int) -> Row:
    kind = meta["kind"]
    reference = {"inference": result.reference, "training": result.training_reference}.get(kind)
    row = Row(name, meta["role"], meta["runtime"], meta["precision"], kind, timing.Spread.of(rates[name]))
    if reference is not None:
        row.ratio = timing.ratios(rates, reference, [name])[name]
    if meta["role"] == "kerasarch":
        factor = TRAINING_FLOPS_FACTOR if kind == "training" else 1
        model_flops = np.asarray(rates[name]) * result.flops_per_image * factor
        yardstick = np.asarray(rates[f"matmul {matmul_size} {meta['precision']}"])
        row.mfu = timing.Spread.of(model_flops / yardstick)
    return row
