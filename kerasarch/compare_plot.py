"""The comparison chart: ImageNet top-1 against GFLOPs, bubble area proportional to parameters.

Every placed model is labelled. matplotlib has no label placement of its own (adjustText
does it, but is not a dependency here), so `_place_labels` tries a ring of positions
around each bubble, nearest first, and keeps the first whose text box stays inside the
axes and overlaps no other bubble or label; a label set away from its bubble gets a thin
leader line.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

AREA_PER_PARAM = 2500 / 1e9  # points^2 per parameter: a 1B-parameter model is a 2,500 pt^2 bubble
MIN_AREA = 12.0  # LeNet-5 (62k parameters) would be invisible at scale; every bubble shows
ANGLES = (0, 30, -30, 60, -60, 90, -90, 150, -150, 180, 120, -120)


def _area(params: int) -> float:
    return max(params * AREA_PER_PARAM, MIN_AREA)


def _overlap(a, b) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def _place_labels(ax, points: list[tuple[str, float, float, float]], avoid: list) -> None:
    """Labels each `(label, x, y, area)` bubble, overlapping no bubble, label or `avoid` box."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    scale = fig.dpi / 72  # points to pixels
    frame = ax.get_window_extent(renderer)
    bubbles = []
    for _, x, y, area in points:
        px, py = ax.transData.transform((x, y))
        r = math.sqrt(area / math.pi) * scale
        bubbles.append(Bbox.from_extents(px - r, py - r, px + r, py + r))
    taken = [*bubbles, *avoid]
    # Biggest bubbles first: their labels have the fewest good places.
    for index in sorted(range(len(points)), key=lambda i: -points[i][3]):
        label, x, y, area = points[index]
        radius = math.sqrt(area / math.pi)
        best = None
        for gap in (2, 8, 16, 28, 44):
            for angle in ANGLES:
                dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
                offset = ((radius + gap) * dx, (radius + gap) * dy)
                ha = "left" if dx > 0.3 else "right" if dx < -0.3 else "center"
                va = "bottom" if dy > 0.3 else "top" if dy < -0.3 else "center"
                text = ax.annotate(label, (x, y), xytext=offset, textcoords="offset points",
                                   ha=ha, va=va, fontsize=8)
                box = text.get_window_extent(renderer).expanded(1.05, 1.1)
                inside = frame.containsx(box.x0) and frame.containsx(box.x1) \
                    and frame.containsy(box.y0) and frame.containsy(box.y1)
                cost = sum(_overlap(box, o) for j, o in enumerate(taken) if j != index)
                cost += 0 if inside else 1e9
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, text, box, gap, offset, ha, va)
                else:
                    text.remove()
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, text, box, gap, offset, ha, va = best
        taken.append(box)
        if gap > 2:  # away from its bubble: draw a leader line
            text.remove()
            ax.annotate(label, (x, y), xytext=offset, textcoords="offset points", ha=ha, va=va,
                        fontsize=8, arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5",
                                                "shrinkA": 1, "shrinkB": radius})


def bubble_chart(data: dict[str, Any], png: str | Path, svg: str | Path) -> list[Path]:
    """Draws the comparison chart of `data` (a `compare.json`) to a PNG and an SVG.

    Only models with a published top-1 are placed (`kerasarch.comparison.headline`);
    the title says how many.

    Args:
        data: The comparison.
        png: PNG path.
        svg: SVG path (text kept as text, so labels are searchable).

    Returns:
        The two paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kerasarch.comparison import headline

    placed = [(n, e) for n, e in data["models"].items() if headline(e)]
    families = sorted({e["family"] for _, e in placed})
    colors = {f: plt.get_cmap("tab10")(i % 10) for i, f in enumerate(families)}
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "kerasarch"}):
        fig, ax = plt.subplots(figsize=(10, 6.5), dpi=100)
        points = []
        for name, entry in placed:
            x, y, area = entry["flops"] / 1e9, headline(entry)["top1"], _area(entry["params"])
            ax.scatter(x, y, s=area, color=colors[entry["family"]], alpha=0.55, edgecolors="0.2",
                       linewidths=0.5, zorder=2)
            points.append((name, x, y, area))
        ax.set_xscale("log")
        if points:
            xs, ys = [p[1] for p in points], [p[2] for p in points]
            ax.set_xlim(min(xs) / 2, max(xs) * 2.5)
            ax.set_ylim(min(ys) - 3, max(ys) + 3)
        ax.set_xlabel("GFLOPs per image at the native input (multiply-adds x2, log scale)")
        ax.set_ylabel("published ImageNet top-1 (%)")
        ax.set_title(f"ImageNet top-1 vs compute; bubble area ~ parameters "
                     f"({len(placed)} of {len(data['models'])} models have a published top-1)",
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.25, zorder=0)
        handles = [ax.scatter([], [], s=40, color=colors[f], alpha=0.55) for f in families]
        family_legend = ax.legend(handles, families, loc="upper left", fontsize=8, title="family",
                                  title_fontsize=8)
        ax.add_artist(family_legend)
        sizes = [ax.scatter([], [], s=_area(int(p)), facecolors="none", edgecolors="0.4")
                 for p in (10e6, 100e6, 300e6)]
        legend = ax.legend(sizes, ["10M", "100M", "300M"], loc="lower right", fontsize=8,
                           title="parameters", title_fontsize=8, labelspacing=2.6, borderpad=1.6,
                           handletextpad=1.8)
        fig.tight_layout()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        _place_labels(ax, points, [box.get_window_extent(renderer) for box in (legend, family_legend)])
        paths = [Path(png), Path(svg)]
        fig.savefig(paths[0], metadata={"Software": None})
        fig.savefig(paths[1], metadata={"Date": None, "Creator": None})
        plt.close(fig)
    return paths
