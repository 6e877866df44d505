"""Inference speed side by side, in one process: kerasarch against keras.applications, MFU,
and every runtime, with top-1 agreement on real photos.

    python benchmarks/inference.py             # the full run (a quiet machine; long)
    python benchmarks/inference.py --quick     # one small model, 2 rounds, results to /tmp

1. Twins: every registered model that declares a keras.applications twin, kerasarch and
   the twin in fp32 and mixed_bfloat16 at batch 16 (`--twins-batch`), interleaved round
   by round; the ratio kerasarch / twin per precision (preprocessing in both graphs: the twin's
   `preprocess_input` is traced into its timed function).
2. MFU: ResNet-50 fp32 and bf16 at batch 16 over a 4096 square matmul of the same
   precision, timed in the same rounds; and ResNet-50 in OpenVINO fp32 over OpenVINO's own
   fp32 matmul (how close the fastest runtime here runs to its kernels' rate).
3. Runtimes: ResNet-18, ResNet-50, MobileNet v2 and EfficientNet-B0 (those registered) at
   batch 1 and 16 in TensorFlow fp32 / bf16, LiteRT fp32 / int8, ONNX Runtime, OpenVINO
   (bf16 too where the CPU has it), beside keras.applications fp32 and torchvision / timm
   fp32 and bf16 when a python with PyTorch is given (--torch-python, else
   $KERASARCH_TORCH_PYTHON, else this python if it has torch): a separate worker process,
   timed there, alternating with the others round by round; top-1 agreement of each
   kerasarch runtime with fp32 Keras on the real photos of ../shared/data/photos
   (random-init weights: the ImageNet files cannot be downloaded on these machines, so
   near-ties make agreement a conservative figure).

`--sections runtimes,mfu` runs only those sections (the twins section over every twin at
its native size takes hours on 2 cores at batch 16; `--twins-batch 1` and `--models`
shorten it). The results file keeps the sections a run did not measure: each section names
the command, machine, date and rounds that measured it, and each is written as soon as it
is done.

Writes OUT/inference.md and OUT/inference.json (default benchmarks/results; --quick
defaults to /tmp/kerasarch-inference-quick so quick figures are never committed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import shlex
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerasarch import analysis, registry
from kerasarch.benchmark import runners, timing, torch_peer
from kerasarch.data import transforms
from kerasarch.extras import MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
RUNTIME_MODELS = ("resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0")
SECTIONS = ("twins", "mfu", "runtimes")


def _sections(text: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"sections are {', '.join(SECTIONS)}; got {text!r}")
    return [s for s in SECTIONS if s in chosen]


def random_pixels(shape, batch: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (batch, *shape)).astype(np.float32)


def photos(size: int, limit: int | None) -> np.ndarray:
    files = sorted(PHOTOS.glob("n0*.JPEG"))[:limit]
    if not files:
        raise SystemExit(f"no photos in {PHOTOS}")
    return np.stack([transforms.eval_transform_encoded(tf.constant(f.read_bytes()), size).numpy()
                     for f in files]).astype(np.float32)


def predict_all(predict, images: np.ndarray, batch: int) -> np.ndarray:
    """Predictions in batches of exactly `batch` (LiteRT's interpreter has a fixed batch)."""
    outputs = []
    for start in range(0, len(images), batch):
        chunk = images[start:start + batch]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), 0)])
        outputs.append(np.asarray(predict(padded))[:len(chunk)])
    return np.concatenate(outputs)


def summary(rates, reference: str) -> dict:
    return {name: spread.as_dict() for name, spread in timing.ratios(rates, reference).items()}


def twins_section(names, batch: int, rounds: int, size: int | None, seconds: float) -> list[dict]:
    rows = []
    for name in names:
        label = runners.twin_label(name)
        images = random_pixels(runners.input_shape(name, size), batch)
        contenders = []
        for precision in ("fp32", "bf16"):
            ours = runners.build(name, size, precision)
            model, preprocess = runners.twin(name, size, precision)
            for who, predict in ((f"kerasarch {precision}", runners.tf_predict(ours)),
                                 (f"{label} {precision}", runners.tf_predict(model, preprocess))):
                contenders.append(timing.Contender(who, lambda p=predict, x=images: p(x), batch))
        rates = timing.interleave(contenders, rounds, seconds)
        row = {"model": name, "twin": label, "batch": batch,
               "images_per_second": {k: timing.Spread.of(v).as_dict() for k, v in rates.items()}}
        for precision in ("fp32", "bf16"):
            row[f"ratio_{precision}"] = timing.ratios(
                rates, f"{label} {precision}", [f"kerasarch {precision}"])[f"kerasarch {precision}"].as_dict()
        rows.append(row)
        print(name, {p: round(row[f"ratio_{p}"]["median"], 3) for p in ("fp32", "bf16")}, flush=True)
        keras.backend.clear_session()
    return rows


def mfu_section(name: str, batch: int, rounds: int, size: int | None, seconds: float,
                matmul_size: int) -> dict:
    images = random_pixels(runners.input_shape(name, size), batch)
    base = runners.build(name, size)
    flops = analysis.flops(base)
    contenders = []
    for precision in ("fp32", "bf16"):
        model = base if precision == "fp32" else runners.build(name, size, precision, base)
        predict = runners.tf_predict(model)
        contenders += [timing.Contender(f"model {precision}", lambda p=predict: p(images), batch),
                       timing.Contender(f"matmul {precision}", runners.matmul(precision, matmul_size),
                                        2 * matmul_size ** 3)]
    precisions = ["fp32", "bf16"]
    with contextlib.suppress(MissingExtraError), tempfile.TemporaryDirectory() as tmp:
        # the fastest runtime for ResNet-50 here, against its own kernels' matmul rate
        predict = runners.openvino_predict(base, Path(tmp))
        contenders += [timing.Contender("model openvino fp32", lambda p=predict: p(images), batch),
                       timing.Contender("matmul openvino fp32", runners.openvino_matmul(matmul_size),
                                        2 * matmul_size ** 3)]
        precisions.append("openvino fp32")
    rates = timing.interleave(contenders, rounds, seconds)
    result = {"model": name, "batch": batch, "flops_per_image": flops, "matmul_size": matmul_size,
              "precisions": precisions}
    for precision in precisions:
        model_flops = np.asarray(rates[f"model {precision}"]) * flops
        matmul_flops = np.asarray(rates[f"matmul {precision}"])
        result[f"mfu_{precision}"] = timing.Spread.of(model_flops / matmul_flops).as_dict()
        result[f"model_gflops_{precision}"] = timing.Spread.of(model_flops / 1e9).as_dict()
        result[f"matmul_gflops_{precision}"] = timing.Spread.of(matmul_flops / 1e9).as_dict()
    print("mfu", {p: round(result[f"mfu_{p}"]["median"], 3) for p in precisions}, flush=True)
    return result


def _runtime_predicts(name, base, size, batch, folder):
    """`{contender: predict}`: kerasarch in every runtime and its peers."""
    predicts = {"kerasarch tf fp32": runners.tf_predict(base),
                "kerasarch tf bf16": runners.tf_predict(runners.build(name, size, "bf16", base)),
                "kerasarch litert fp32": runners.litert_predict(base, batch, folder),
                "kerasarch litert int8": runners.litert_predict(base, batch, folder, "int8"),
                "kerasarch onnx fp32": runners.onnx_predict(base, folder)}
    for precision in runners.runtime_precisions("openvino"):
        predicts[f"kerasarch openvino {precision}"] = runners.openvino_predict(base, folder, precision)
    if runners.twin(name, size) is not None:
        predicts[f"{runners.twin_label(name)} fp32"] = runners.tf_predict(*runners.twin(name, size))
    return predicts


def _torch_contenders(worker, name, size, batch) -> list[timing.Contender]:
    """torchvision / timm's `name` in fp32 and bf16, loaded in the PyTorch worker (none without one)."""
    height, width, _ = runners.input_shape(name, size)
    contenders, notes = [], []
    for precision in ("fp32", "bf16") if worker is not None else ():
        key = f"{name} {batch} {precision}"
        note = worker.load(key, name, batch, height, width, precision)
        if note is not None:
            if note not in notes:
                print("torch:", note, flush=True)
            notes.append(note)
            continue
        contenders.append(worker.contender(f"torch {name} {precision}", key, batch))
    return contenders


def runtimes_section(names, batches, rounds, size, seconds, photo_limit, worker=None) -> list[dict]:
    rows = []
    for name in names:
        base = runners.build(name, size)
        pixels = photos(runners.input_shape(name, size)[0], photo_limit)
        expected = predict_all(runners.tf_predict(base), pixels, 16).argmax(-1)
        for batch in batches:
            with tempfile.TemporaryDirectory() as tmp:
                predicts = _runtime_predicts(name, base, size, batch, Path(tmp))
                images = random_pixels(runners.input_shape(name, size), batch)
                contenders = [timing.Contender(k, lambda p=p, x=images: p(x), batch)
                               for k, p in predicts.items()]
                torch_contenders = _torch_contenders(worker, name, size, batch)
                rates = timing.interleave(contenders + torch_contenders, rounds, seconds)
                for contender in torch_contenders:
                    worker.unload(f"{name} {batch} {contender.name.rsplit(' ', 1)[1]}")
                agreement = {k: float(np.mean(predict_all(p, pixels, batch).argmax(-1) == expected))
                             for k, p in predicts.items() if k.startswith("kerasarch")}
            peers = [k for k in rates if not k.startswith("kerasarch") and k.endswith("fp32")]
            reference = peers[0] if peers else "kerasarch tf fp32"
            ratios = summary(rates, reference)
            # the recommendation: runtimes that keep top-1 agreement >= 99% (int8 is reported only)
            ours = {k: v for k, v in ratios.items() if k.startswith("kerasarch") and agreement[k] >= 0.99}
            fastest = max(ours, key=lambda k: ours[k]["median"]) if ours else reference
            rows.append({"model": name, "batch": batch, "reference": reference, "ratios": ratios,
                         "images_per_second": {k: timing.Spread.of(v).as_dict() for k, v in rates.items()},
                         "top1_agreement": agreement, "photos": len(pixels), "fastest": fastest})
            print(name, batch, "fastest:", fastest, round(ratios.get(fastest, {"median": 1})["median"], 3),
                  flush=True)
        keras.backend.clear_session()
    return rows


def _fmt(spread: dict, digits: int = 2, suffix: str = "x") -> str:
    low, high = spread["minimum"], spread["maximum"]
    return f"{spread['median']:.{digits}f}{suffix} [{low:.{digits}f}-{high:.{digits}f}]"


def markdown(report: dict) -> str:
    lines = ["# Inference benchmarks", "", "Figures are median [min-max] over interleaved rounds. Each "
             "section names the run that measured it: the sections can be measured in separate runs "
             "(`--sections`), each on a quiet machine.", ""]
    writers = {"twins": _twins_markdown, "mfu": _mfu_markdown, "runtimes": _runtimes_markdown}
    for section, write in writers.items():
        if section in report:
            header, *body = write(report[section])
            lines += [header, "", _run_line(report["runs"][section]), "", *body]
    return "\n".join(lines)


def _run_line(run: dict) -> str:
    dated = f", {run['date']}" if run.get("date") else ""
    return f"Measured by `{run['command']}` on {run['machine_line']}{dated}; {run['rounds']} rounds."


def merge(report: dict, previous: dict | None) -> dict:
    """`report`, with the sections of `previous` it did not measure again, each keeping its run.

    A results file written before sections carried their own run (one command at the top)
    gives that command to each of its sections.
    """
    if not previous:
        return report
    runs = previous.get("runs") or {
        section: {key: previous[key] for key in ("command", "machine", "machine_line", "rounds")}
        for section in previous.get("sections", [])}
    merged = {"sections": [], "runs": {}}
    for section in SECTIONS:
        if section in report["runs"]:
            merged[section], merged["runs"][section] = report[section], report["runs"][section]
        elif section in runs and section in previous:
            merged[section], merged["runs"][section] = previous[section], runs[section]
        else:
            continue
        merged["sections"].append(section)
    return merged


def _twins_markdown(twins: list[dict]) -> list[str]:
    batches = sorted({r["batch"] for r in twins})
    lines = [f"## kerasarch / keras.applications twin (batch {', '.join(map(str, batches))}, "
             "preprocessing in both graphs)",
             "| model | twin | fp32 ratio | bf16 ratio |", "|---|---|---:|---:|"]
    return lines + [f"| {r['model']} | {r['twin']} | {_fmt(r['ratio_fp32'])} | {_fmt(r['ratio_bf16'])} |"
                    for r in twins] + [""]


def _mfu_markdown(m: dict) -> list[str]:
    lines = [f"## Model FLOP utilization ({m['model']}, batch {m['batch']}, "
              f"{m['flops_per_image'] / 1e9:.2f} GFLOPs / image, {m['matmul_size']}² matmul)",
              "Each runtime's model FLOP/s over a matmul its own kernels compute (TensorFlow's for "
              "tf fp32 / bf16, OpenVINO's for openvino fp32), timed in the same rounds.", "",
              "| runtime / precision | MFU | model GFLOP/s | matmul GFLOP/s |", "|---|---:|---:|---:|"]
    for p in m.get("precisions", ["fp32", "bf16"]):
        model = _fmt(m[f"model_gflops_{p}"], 1, "") if f"model_gflops_{p}" in m else "-"
        lines.append(f"| {p if ' ' in p else 'tf ' + p} | {_fmt(m[f'mfu_{p}'], 3, '')} | {model} | "
                     f"{_fmt(m[f'matmul_gflops_{p}'], 1, '')} |")
    return lines + [""]


def _runtimes_markdown(runtimes: list[dict]) -> list[str]:
    lines = ["## Runtimes (ratio to the reference; top-1 agreement with fp32 Keras on real photos)"]
    for r in runtimes:
        lines += [f"### {r['model']}, batch {r['batch']}: fastest {r['fastest']}", "",
                  f"Reference: {r['reference']}; {r['photos']} photos.", "",
                  "| contender | ratio | images/s | top-1 agreement |", "|---|---:|---:|---:|"]
        for name, rate in r["images_per_second"].items():
            ratio = "reference" if name == r["reference"] else _fmt(r["ratios"][name])
            agree = f"{r['top1_agreement'][name]:.2%}" if name in r["top1_agreement"] else "-"
            lines.append(f"| {name} | {ratio} | {_fmt(rate, 1, '')} | {agree} |")
        lines.append("")
    return lines


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = sorted(set(names) - set(registry.list_models()))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown model names {unknown or text!r}; see `kerasarch list`")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one small model, 2 rounds, 64 px")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--torch-python", default=None, metavar="PATH",
                        help="a python with torch and torchvision: their models join the runtimes")
    parser.add_argument("--sections", default=",".join(SECTIONS), type=_sections,
                        help=f"comma-separated, of {', '.join(SECTIONS)} (default: all)")
    parser.add_argument("--twins-batch", type=int, default=16, metavar="N",
                        help="the twins section's batch size (default 16)")
    parser.add_argument("--models", type=_names, default=None, metavar="A,B",
                        help="only these models in the twins and runtimes sections")
    args = parser.parse_args(argv)
    registered = set(registry.list_models())
    if args.quick:
        rounds, size, seconds, matmul_size, limit = args.rounds or 2, 64, 0.2, 2048, 8
        twins, mfu_model, models, batches = ["mobilenet_v2"], "resnet50", ["resnet18"], [1]
        out = Path(args.out or "/tmp/kerasarch-inference-quick")
    else:
        rounds, size, seconds, matmul_size, limit = args.rounds or 7, None, 1.0, 4096, None
        twins = [n for n in registry.list_models() if registry.model_info(n).twin]
        mfu_model, batches = "resnet50", [1, 16]
        models = [n for n in RUNTIME_MODELS if n in registered]
        out = Path(args.out) if args.out else ROOT / "benchmarks" / "results"
    if args.models:
        twins = [n for n in args.models if registry.model_info(n).twin]
        models = list(args.models)
    previous = json.loads((out / "inference.json").read_text()) if (out / "inference.json").exists() else None
    machine = runners.machine()
    given = sys.argv[1:] if argv is None else argv
    run = {"command": shlex.join(["python", "benchmarks/inference.py", *given]),
           "machine": machine, "rounds": rounds, "image_size": size or "native",
           "date": datetime.date.today().isoformat(),
           "machine_line": f"{machine['cpu']}, {machine['cores']} cores, TF {machine['tensorflow']}, "
                           f"Keras {machine['keras']}"}
    report = {"sections": [], "runs": {}}
    sections = {"twins": lambda: twins_section(twins, args.twins_batch, rounds, size, seconds),
                "mfu": lambda: mfu_section(mfu_model, 16, rounds, size, seconds, matmul_size),
                "runtimes": lambda: runtimes_section(models, batches, rounds, size, seconds, limit, worker)}
    with contextlib.ExitStack() as stack:
        worker = _torch_worker(stack, args.torch_python, machine) if "runtimes" in args.sections else None
        for section in args.sections:  # each finished section is written at once: a long run keeps them
            report[section] = sections[section]()
            report["runs"][section] = run
            report["sections"].append(section)
            write_report(out, merge(report, previous))


def write_report(out: Path, report: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "inference.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "inference.md").write_text(markdown(report) + "\n")
    print(f"Wrote {out / 'inference.md'} and {out / 'inference.json'}", flush=True)


def _torch_worker(stack: contextlib.ExitStack, torch_python: str | None, machine: dict):
    """The PyTorch worker (ended with `stack`), or None where no python has PyTorch and none was named."""
    try:
        python, source = torch_peer.find_python(torch_python)
    except torch_peer.TorchUnavailableError:
        if torch_python:
            raise
        print("no python with PyTorch: the runtimes are compared without torch", flush=True)
        return None
    worker = stack.enter_context(torch_peer.TorchWorker(python, source, torch_peer.tf_threads()))
    machine["torch"] = {**worker.versions, "threads": worker.threads, "python": python}
    return worker


if __name__ == "__main__":
    main()
