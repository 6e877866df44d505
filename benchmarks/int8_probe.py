"""Does static int8 make a model faster on this CPU? ONNX Runtime and OpenVINO, fp32 against int8.

    python benchmarks/int8_probe.py              # ResNet-50, batch 1 and 16, 5 rounds
    python benchmarks/int8_probe.py --model resnet18 --rounds 3

The int8 model is ONNX Runtime's static post-training quantization (`quantize_static`: QDQ
format, per-channel int8 weights, uint8 activations, calibrated on every fourth shared photo)
of the model's fp32 ONNX export; ONNX Runtime runs it, and OpenVINO compiles the same QDQ file
to its int8 kernels. All four contenders are timed interleaved round by round
(`kerasarch.benchmark.timing`); ratios are to OpenVINO fp32, the fastest fp32 runtime for the
ResNets in `benchmarks/results/inference.md`. Top-1 agreement is with fp32 Keras on the shared
photos (random-init weights, as in inference.py).

This is a probe, not a kerasarch feature: on a CPU without VNNI (AVX2 only) int8 convolutions
gain nothing, so kerasarch exports no static-int8 ONNX / OpenVINO model. Writes
OUT/int8_probe.md (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from inference import photos, predict_all, random_pixels

from kerasarch.benchmark import runners, timing
from kerasarch.export import onnx, onnx_session, openvino, openvino_model
from kerasarch.export.onnx import INPUT_NAME

ROOT = Path(__file__).resolve().parents[1]


class _Calibration:
    """ONNX Runtime's CalibrationDataReader protocol over a stack of photos, one at a time."""

    def __init__(self, images: np.ndarray):
        self._feeds = iter([{INPUT_NAME: image[None]} for image in images])

    def get_next(self):
        return next(self._feeds, None)


def int8_file(fp32: Path, calibration: np.ndarray) -> Path:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, quantized = fp32.with_name("prepared.onnx"), fp32.with_name("int8.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(quantized), _Calibration(calibration), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return quantized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    base = runners.build(args.model)
    size = runners.input_shape(args.model, None)
    pixels = photos(size[0], None)
    expected = predict_all(runners.tf_predict(base), pixels, 16).argmax(-1)
    machine = runners.machine()
    lines = ["# Static int8 on this CPU", "",
             f"`python benchmarks/int8_probe.py --model {args.model} --rounds {args.rounds}` on "
             f"{machine['cpu']}, {machine['cores']} cores; median [min-max] over rounds; ratios to "
             f"OpenVINO fp32; top-1 agreement with fp32 Keras on {len(pixels)} photos.", ""]
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = onnx(base, Path(tmp) / f"{args.model}.onnx")
        int8 = int8_file(fp32, pixels[::4])
        predicts = {"openvino fp32": openvino_model(openvino(base, Path(tmp) / f"{args.model}.xml")),
                    "openvino int8 (QDQ)": openvino_model(int8),
                    "onnx fp32": onnx_session(fp32), "onnx int8 (QDQ)": onnx_session(int8)}
        agreement = {k: float(np.mean(predict_all(p, pixels, 16).argmax(-1) == expected))
                     for k, p in predicts.items()}
        for batch in (1, 16):
            images = random_pixels(size, batch)
            rates = timing.interleave([timing.Contender(k, lambda p=p, x=images: p(x), batch)
                                       for k, p in predicts.items()], args.rounds, 1.0)
            ratios = timing.ratios(rates, "openvino fp32")
            lines += [f"## {args.model}, batch {batch}", "",
                      "| contender | ratio | images/s | top-1 agreement |", "|---|---:|---:|---:|"]
            for name, rate in rates.items():
                ratio = ratios[name].format(2, "x") if name in ratios else "reference"
                rate = timing.Spread.of(rate).format(1)
                lines.append(f"| {name} | {ratio} | {rate} | {agreement[name]:.2%} |")
            lines.append("")
            print("\n".join(lines[-len(rates) - 5:]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "int8_probe.md").write_text("\n".join(lines) + "\n")
    print(f"Wrote {out / 'int8_probe.md'}")


if __name__ == "__main__":
    main()
