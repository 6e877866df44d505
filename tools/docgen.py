"""Markdown generated from the code for the documentation site, so the pages cannot drift.

`tools/mkdocs_hooks.py` calls these while mkdocs builds: the CLI reference from
`kerasarch.cli.build_parser()`, the model and stage tables of a family page from the
registry and the family modules' `CONFIGS`, layer tables and architecture diagrams
(`keras.utils.plot_model`) of built models, and the list of lessons.

argparse has no public API to walk a parser's options, so `cli_reference` reads its
`_actions` (stable since Python 3.2); everything else uses public APIs.
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import functools
import importlib
import json
import os
import pkgutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
USAGE_WIDTH = "100"  # columns argparse wraps usage lines at, fixed so the page is stable


# --- the command line ------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand of `parser`."""
    found = []
    for action in parser._actions:  # noqa: SLF001 - see the module docstring
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}  # noqa: SLF001
            found += [(name, helps.get(name, ""), sub) for name, sub in action.choices.items()]
    return found


def walk_commands(
    parser: argparse.ArgumentParser, prefix: str = "kerasarch"
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Yields (`"kerasarch train"`, one-line help, parser) for every command, nested ones included."""
    for name, help_text, sub in _subcommands(parser):
        path = f"{prefix} {name}"
        yield path, help_text, sub
        yield from walk_commands(sub, path)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _option_row(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(f"`{s}`" for s in action.option_strings)
    else:
        names = f"`{action.metavar or action.dest}`" + (" (one or more)" if action.nargs == "+" else "")
    if action.choices:
        value = " \\| ".join(f"`{c}`" for c in action.choices)
    elif action.nargs == 0:
        value = "flag"
    else:
        value = getattr(action.type, "__name__", "str")
    default = action.default
    hidden = default is None or default is False or default == argparse.SUPPRESS
    shown = "" if hidden or action.nargs == "+" else f"`{default}`"
    return f"| {names} | {value} | {shown} | {_cell(action.help or '')} |"


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = [
        _option_row(a) for a in parser._actions  # noqa: SLF001
        if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction)  # noqa: SLF001
    ]
    if not rows:
        return []
    return ["| argument | value | default | meaning |", "|---|---|---|---|", *rows, ""]


def _usage(parser: argparse.ArgumentParser) -> str:
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = USAGE_WIDTH
    try:
        return parser.format_usage().strip()
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def _command_section(title: str, parser: argparse.ArgumentParser, level: int) -> list[str]:
    lines = [f"{'#' * level} `{title}`", "", "```text", _usage(parser), "```", ""]
    if parser.description:
        lines += [parser.description, ""]
    lines += _options_table(parser)
    subs = _subcommands(parser)
    if subs:
        lines += ["| command | what it does |", "|---|---|"]
        lines += [f"| [`{title} {n}`](#{_anchor(f'{title} {n}')}) | {_cell(h)} |" for n, h, _ in subs]
        lines.append("")
    if parser.epilog:
        lines += ["```text", parser.epilog.strip(), "```", ""]
    return lines


def _anchor(title: str) -> str:
    """The id Python-Markdown's toc extension gives a heading `` `title` ``."""
    return title.lower().replace(" ", "-")


def cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The reference of every `kerasarch` command: usage, description, options, examples.

    Args:
        parser: The parser to document; default `kerasarch.cli.build_parser()`.

    Returns:
        Markdown, one section per command.
    """
    if parser is None:
        from kerasarch.cli import build_parser

        parser = build_parser()
    lines = _command_section("kerasarch", parser, 2)
    for title, _, sub in walk_commands(parser):
        lines += _command_section(title, sub, 1 + title.count(" "))
    return "\n".join(lines)


# --- models: registry tables, stage tables, layer tables, diagrams ---------------------------


def select_models(patterns: list[str]) -> list[str]:
    """Registered model names matching any of the shell-style `patterns`, in registry order.

    Raises:
        ValueError: If nothing matches (a page naming models that no longer exist).
    """
    import kerasarch

    names = [n for n in kerasarch.list_models() if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not names:
        raise ValueError(f"No registered model matches {patterns}.")
    return names


def models_table(patterns: list[str]) -> str:
    """Paper, input and parameter counts (`kerasarch.model_info(name)`) of the selected models."""
    import kerasarch

    lines = [
        "| model | paper (year) | input | params (total) | trainable | ImageNet weights | counts from |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for name in select_models(patterns):
        info = kerasarch.model_info(name)
        size = "x".join(str(d) for d in info.input_shape)
        lines.append(
            f"| `{name}` | {_cell(info.paper)} ({info.year}) | {size} | {info.params.total:,} | "
            f"{info.params.trainable:,} | {'yes' if info.imagenet_weights else '-'} | "
            f"{_cell(info.params.source)} |"
        )
    return "\n".join(lines)


def _family_configs() -> dict[str, tuple[Any, Any]]:
    """Every family module's `CONFIGS` entry: name -> (config, module)."""
    import kerasarch.models

    found: dict[str, tuple[Any, Any]] = {}
    for module_info in pkgutil.iter_modules(kerasarch.models.__path__):
        module = importlib.import_module(f"kerasarch.models.{module_info.name}")
        for name, config in getattr(module, "CONFIGS", {}).items():
            found[name] = (config, module)
    return found


def _value(value: Any, module: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    if dataclasses.is_dataclass(value):
        # A shared constant of the module (ResNet's KERAS / TORCHVISION layouts) by its name.
        for attr, constant in vars(module).items():
            if attr.isupper() and constant is value:
                return f"`{attr}`"
        return _cell(repr(value))
    if callable(value):  # a block function or a rule (ResNet's rows hold them): its name
        return f"`{value.__name__}`"
    return f"`{value}`" if isinstance(value, str) else str(value)


def stage_table(patterns: list[str]) -> str:
    """The family module's `CONFIGS` rows for the selected names, one column per field.

    Fields equal in every row are stated once under the table instead of repeated.

    Raises:
        ValueError: If no selected name has a `CONFIGS` entry.
    """
    configs = _family_configs()
    rows = [(n, *configs[n]) for n in configs if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    if not rows:
        raise ValueError(f"No family module has a CONFIGS entry matching {patterns}.")
    fields = [f.name for f in dataclasses.fields(rows[0][1])]
    cells = {f: [_value(getattr(c, f), m) for _, c, m in rows] for f in fields}
    varying = [f for f in fields if len(set(cells[f])) > 1 or len(rows) == 1]
    lines = [
        "| config | " + " | ".join(f.replace("_", " ") for f in varying) + " |",
        "|---|" + "---|" * len(varying),
    ]
    for i, (name, _, _) in enumerate(rows):
        lines.append(f"| `{name}` | " + " | ".join(cells[f][i] for f in varying) + " |")
    same = [f"{f.replace('_', ' ')} {cells[f][0]}" for f in fields if f not in varying]
    if same:
        lines += ["", "Every row: " + "; ".join(same) + "."]
    source = rows[0][2].__name__
    lines += ["", f"From `{source}.CONFIGS`."]
    return "\n".join(lines)


@functools.cache
def built_model(name: str):
    """The registered model `name` with its default arguments, built once per process as a graph.

    The site shows structure only (layers, shapes, parameter counts; `flops` gives the one
    figure that needs a computation), so the model is built without weight values
    (`kerasarch.registry.graph_only`), a fraction of a full build's cost.
    """
    from kerasarch import registry

    return registry.graph_only(name)


@functools.cache
def flops(name: str) -> int:
    """FLOPs of one image through the registered model `name` at its native input size.

    `kerasarch compare` measured them with `kerasarch.analysis.flops` (TensorFlow's profiler
    on the built graph: multiply-adds x2, normalization, additions and the in-graph
    preprocessing included) and committed them in benchmarks/results/compare.json, whose
    currency tests/test_analysis.py checks; the site reads that figure while it describes
    the registered model (same parameter count, same native size), and measures it here
    otherwise.
    """
    from kerasarch import comparison, registry

    info = registry.model_info(name)
    entry = comparison.load(comparison.RESULTS / "compare.json")["models"].get(name) or {}
    if entry.get("params") == info.params.total and entry.get("image_size") == info.input_shape[0]:
        return int(entry["flops"])
    return int(comparison.measure(name)["flops"])


def _shape(tensor) -> str:
    return "x".join(str(d) for d in tensor.shape[1:])


def layer_table(name: str) -> str:
    """Every layer of the built model `name` with its kernel, stride, output and parameters."""
    model = built_model(name)
    lines = ["| layer | type | kernel / stride | output | parameters |", "|---|---|---|---|---:|"]
    for layer in model.layers:
        kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        strides = getattr(layer, "strides", None)
        geometry = ""
        if kernel:
            geometry = "x".join(map(str, kernel)) + (f" / {strides[0]}" if strides else "")
        lines.append(
            f"| `{layer.name}` | {type(layer).__name__} | {geometry} | {_shape(layer.output)} | "
            f"{layer.count_params():,} |"
        )
    lines += ["", f"Total: {model.count_params():,} parameters; "
              f"{flops(name) / 1e9:,.3f} GFLOPs per image at its native input size (multiply-adds x2, "
              "counted by TensorFlow's profiler)."]
    return "\n".join(lines)


def diagram(name: str, first: str | None = None, last: str | None = None) -> tuple[bytes, str]:
    """A `keras.utils.plot_model` PNG of model `name`, or of its layers `first`..`last`.

    Args:
        name: A registered model name; it is built with its default arguments.
        first: Name of the layer whose output is the diagram's input (a block boundary).
        last: Name of the last layer shown.

    Returns:
        The PNG bytes and a caption naming the model, its parameters and FLOPs.
    """
    import keras

    model = built_model(name)
    shown = model
    if first and last:
        shown = keras.Model(model.get_layer(first).output, model.get_layer(last).output,
                            name=f"{name}_{last}")
        # The cut's input layer is named after an internal tensor (keras_tensor_52CLONE);
        # name it after the layer whose output it is, as the diagram's reader knows it.
        shown.layers[0].name = first
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.png"
        keras.utils.plot_model(shown, to_file=str(path), show_shapes=True, show_layer_names=True,
                               dpi=64)
        png = path.read_bytes()
    size = "x".join(str(d) for d in model.input_shape[1:])
    whole = f"{model.count_params():,} parameters, {flops(name) / 1e9:,.3f} GFLOPs per image at {size}"
    if first and last:
        caption = f"`{name}` from `{first}` to `{last}` (the whole model: {whole})"
    else:
        caption = f"`{name}`: {whole}"
    return png, caption


# --- lessons ---------------------------------------------------------------------------------


def lessons(folder: Path = ROOT / "notebooks") -> list[tuple[str, str, str]]:
    """(file name, title, first paragraph) of every lesson notebook, in lesson order."""
    found = []
    for path in sorted(folder.glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        text = "".join(next(c["source"] for c in cells if c["cell_type"] == "markdown"))
        head, _, rest = text.partition("\n")
        summary = rest.strip().split("\n\n")[0].replace("\n", " ")
        found.append((path.name, head.lstrip("# ").strip(), summary))
    return found


def lessons_table(page_dir: str = "") -> str:
    """A table of the lessons linking to their rendered pages (under `notebooks/`)."""
    lines = ["| lesson | what it teaches |", "|---|---|"]
    for file_name, title, summary in lessons():
        link = f"{page_dir}notebooks/{file_name}"
        lines.append(f"| [{_cell(title)}]({link}) | {_cell(summary)} |")
    return "\n".join(lines)
