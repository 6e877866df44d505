"""The benchmark's printed table: ratios with their spread, images/s beside them, MFU."""

from __future__ import annotations

from kerasarch.benchmark.core import BenchmarkResult, Row


def _rate(row: Row) -> str:
    if row.kind == "matmul":
        giga = [v / 1e9 for v in (row.rate.median, row.rate.minimum, row.rate.maximum)]
        return f"{giga[0]:.1f} GFLOP/s [{giga[1]:.1f}-{giga[2]:.1f}]"
    return row.rate.format(1)


def machine_line(result: BenchmarkResult) -> str:
    """`"AMD EPYC ..., 2 cores, TensorFlow 2.21.0"`."""
    m = result.machine
    return f"{m['cpu']}, {m['cores']} cores, {m['arch']}, TensorFlow {m['tensorflow']}, Keras {m['keras']}"


def format_result(result: BenchmarkResult) -> str:
    """The result as text: a header, one table row per contender, notes, the recommendation."""
    height, width, channels = result.image_size
    lines = [
        f"{result.model} at batch {result.batch_size}, {height}x{width}x{channels}, {result.precision}, "
        f"{result.rounds} interleaved rounds; {result.flops_per_image / 1e9:.3f} GFLOPs per image",
        f"machine: {machine_line(result)}",
        f"ratios: images/s over {result.reference} in the same round"
        + (f" (training: over {result.training_reference})" if result.training_reference else "")
        + "; median [min-max] over rounds",
        "",
    ]
    header = ("contender", "ratio", "images/s", "MFU")
    table = [header]
    for row in result.rows:
        ratio = "reference" if row.name in (result.reference, result.training_reference) \
            else (row.ratio.format(2, "x") if row.ratio else "-")
        table.append((row.name, ratio, _rate(row), row.mfu.format(2) if row.mfu else "-"))
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines += ["", "MFU: the model's FLOP/s (training: 3x the forward FLOPs) over the measured matmul "
              "FLOP/s of its precision, per round."]
    lines += [f"note: {n}" for n in result.notes]
    if result.fastest:
        best = result.row(result.fastest)
        lines.append(f"fastest here: {best.runtime} ({best.precision}) for {result.model} at batch "
                     f"{result.batch_size}: {best.ratio.format(2, 'x')} {result.reference}")
    return "\n".join(lines)
