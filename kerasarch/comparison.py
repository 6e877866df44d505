"""One table of every registered model, and the chart the surveys open with.

`kerasarch compare` measures each model once at its native input (FLOPs by TensorFlow's
profiler, multiply-adds x2; depth; peak activation memory; see `kerasarch.analysis`) and
keeps the measurements in `compare.json`, which doubles as a cache: a later run measures
only models missing from it, or whose native size or parameter count changed
(`remeasure=True` measures all). The registry's metadata (family, year, published top-1)
is re-read on every run, so only measurements are cached.

In a source checkout, `kerasarch compare --write-docs` (`write_docs()`) rewrites
`benchmarks/results/compare.{md,csv,json}`, `docs/images/compare.{png,svg}` and the
`<!-- compare:start -->` blocks of README.md and docs/models.md; a test keeps them current.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from kerasarch import registry
from kerasarch.analysis import format_bytes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "docs" / "images"
PAGES = {ROOT / "README.md": "docs/images/", ROOT / "docs" / "models.md": "images/"}
COMMAND = "kerasarch compare --write-docs"


def _version() -> str:
    from kerasarch.cli_support import version

    return version()


def measure(name: str) -> dict[str, Any]:
    """Builds `name` at its native input (default head) and measures it.

    Args:
        name: A registry name.

    Returns:
        `{"image_size", "params", "flops", "depth", "peak_activation_bytes", "kerasarch"}`.
    """
    import gc

    import keras

    from kerasarch import analysis

    model = registry.get_model(name)
    try:
        return {
            "image_size": int(model.input_shape[1]),
            "params": int(model.count_params()),
            "flops": analysis.flops(model),
            "depth": analysis.depth(model),
            "peak_activation_bytes": analysis.peak_activation_bytes(model),
            "kerasarch": _version(),
        }
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


def _current(entry: dict[str, Any] | None, info: registry.ModelInfo) -> bool:
    """Whether a cached measurement still describes the registered model."""
    return bool(entry) and entry.get("image_size") == info.input_shape[0] \
        and entry.get("params") == info.params.total and "flops" in entry


def _metadata(info: registry.ModelInfo) -> dict[str, Any]:
    return {
        "family": info.family,
        "year": info.year,
        "input": "x".join(map(str, info.input_shape)),
        "trainable": info.params.trainable,
        "accuracy": [dataclasses.asdict(a) for a in info.accuracy],
    }


def load(path: str | Path) -> dict[str, Any]:
    """Reads a `compare.json` (an empty comparison where the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return {"models": {}}
    return json.loads(path.read_text())


def update(
    data: dict[str, Any],
    names: Sequence[str] | None = None,
    remeasure: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Brings `data` (a loaded `compare.json`) up to date with the registry for `names`.

    Args:
        data: The comparison; its measurements are reused where still current.
        names: Registry names (default every registered model), in the table's order.
        remeasure: Measure every named model even where a current measurement exists.
        log: Called with a progress line per measured model (default: stderr).

    Returns:
        A new comparison holding exactly `names`, each with its measurement and the
        registry's metadata.

    Raises:
        ValueError: For an unknown model name.
    """
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    names = list(names) if names else registry.list_models()
    infos = {name: registry.model_info(name) for name in names}  # unknown names fail first
    old = data.get("models", {})
    models: dict[str, Any] = {}
    stale = [n for n in names if remeasure or not _current(old.get(n), infos[n])]
    for name in names:
        entry = dict(old.get(name) or {})
        if name in stale:
            start = time.perf_counter()
            log(f"measuring {name} ({stale.index(name) + 1}/{len(stale)}) ...")
            entry.update(measure(name))
            log(f"  {entry['flops'] / 1e9:.3f} GFLOPs in {time.perf_counter() - start:.1f} s")
        models[name] = {**entry, **_metadata(infos[name])}
    return {
        "note": "FLOPs of one image at the native input, counted by TensorFlow's profiler "
        "(multiply-adds x2, inference mode); regenerate with `kerasarch compare`.",
        "models": models,
    }


def headline(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The published top-1 a model is placed by: its first registered figure, or None."""
    return entry["accuracy"][0] if entry.get("accuracy") else None


def _source(figure: dict[str, Any]) -> str:
    size = f" at {figure['image_size']}" if figure.get("image_size") else ""
    return f"{figure['weights']}{size} ({figure['source']})"


def rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows (plain values), one per model, in the comparison's order."""
    found = []
    for name, entry in data["models"].items():
        top = headline(entry)
        found.append({
            "model": name, "family": entry["family"], "year": entry["year"],
            "params": entry["params"], "flops": entry["flops"], "gflops": round(entry["flops"] / 1e9, 4),
            "input": entry["input"], "depth": entry["depth"],
            "peak_activation_bytes": entry["peak_activation_bytes"],
            "top1": top["top1"] if top else "", "top1_source": _source(top) if top else "",
            "other_top1": "; ".join(f"{a['top1']:g} {_source(a)}" for a in entry["accuracy"][1:]),
        })
    return found


def _count(n: float) -> str:
    return f"{n / 1e6:,.1f}M" if n >= 1e6 else f"{n / 1e3:,.1f}K"


def _gflops(g: float) -> str:
    return f"{g:,.2f}" if g >= 1 else f"{g:.3g}"


def markdown(data: dict[str, Any]) -> str:
    """The comparison as a Markdown table."""
    lines = [
        "| model | family | year | params | GFLOPs | input | depth | peak activations | top-1 (%) "
        "| top-1 source | other published top-1 |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for r in rows(data):
        top1 = f"{r['top1']:.1f}" if r["top1"] != "" else "-"
        lines.append(
            f"| `{r['model']}` | {r['family']} | {r['year']} | {_count(r['params'])} | "
            f"{_gflops(r['gflops'])} | {r['input']} | {r['depth']} | "
            f"{format_bytes(r['peak_activation_bytes'])} | "
            f"{top1} | {r['top1_source'] or '-'} | {r['other_top1'] or '-'} |"
        )
    return "\n".join(lines)


def csv_text(data: dict[str, Any]) -> str:
    """The comparison as CSV, one row per model (`rows()`'s columns)."""
    table = rows(data)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(table[0]) if table else ["model"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return out.getvalue()


def caption(data: dict[str, Any]) -> str:
    """The chart's caption: what is plotted and which models could not be placed."""
    placed = [n for n, e in data["models"].items() if headline(e)]
    missing = [n for n in data["models"] if n not in placed]
    text = (
        f"ImageNet top-1 against GFLOPs per image at the native input (log scale; multiply-adds x2, "
        f"TensorFlow's profiler); bubble area proportional to parameters. {len(placed)} of "
        f"{len(data['models'])} models are placed: only a model with a published ImageNet top-1 "
        "can be (its first figure in the table), and it is placed at its native input's GFLOPs "
        "even where the figure was measured at another size (the table gives each figure's)."
    )
    if missing:
        text += " Not placed (no published top-1): " + ", ".join(f"`{n}`" for n in missing) + "."
    return text


def write(data: dict[str, Any], out: str | Path, figures: str | Path | None = None) -> list[Path]:
    """Writes compare.{json,md,csv} to `out` and compare.{png,svg} to `figures` (default `out`).

    Returns:
        The paths written.
    """
    from kerasarch import compare_plot

    out, figures = Path(out), Path(figures or out)
    out.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    written = [out / "compare.json", out / "compare.md", out / "compare.csv"]
    written[0].write_text(json.dumps(data, indent=1) + "\n")
    written[1].write_text(markdown(data) + "\n\n" + caption(data) + "\n")
    written[2].write_text(csv_text(data))
    written += compare_plot.bubble_chart(data, figures / "compare.png", figures / "compare.svg")
    return written


def docs_block(data: dict[str, Any], image_dir: str) -> str:
    """The README/docs block: the chart, its caption and the table."""
    return "\n".join([
        f"![ImageNet top-1 against GFLOPs, bubble area proportional to parameters]({image_dir}compare.svg)",
        "",
        caption(data),
        "",
        markdown(data),
        "",
        f"Regenerated by `{COMMAND}` (measures only models missing from "
        "`benchmarks/results/compare.json`).",
    ])


def _replace_block(path: Path, marker: str, content: str) -> None:
    text = path.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} block to write the comparison into.")
    head, rest = text.split(start, 1)
    path.write_text(f"{head}{start}\n{content}\n{end}{rest.split(end, 1)[1]}")


def write_docs(remeasure: bool = False, log: Callable[[str], None] | None = None) -> list[Path]:
    """Regenerates the committed comparison of every registered model (a source checkout only).

    Returns:
        The paths written.

    Raises:
        ValueError: Where the package is installed without its sources.
    """
    if not all(page.exists() for page in PAGES):
        raise ValueError(f"--write-docs needs a source checkout; {ROOT} has no README.md and docs/.")
    data = update(load(RESULTS / "compare.json"), remeasure=remeasure, log=log)
    written = write(data, RESULTS, FIGURES)
    for page, image_dir in PAGES.items():
        _replace_block(page, "compare", docs_block(data, image_dir))
        written.append(page)
    return written
