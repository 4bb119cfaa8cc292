"""Shared style and helpers of :mod:`bench.figures`: one-column size (3.3 in, 8 pt text), the
colour-blind-safe palette, saving as PDF + PNG, labels and point-label placement."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure

COLUMN_WIDTH_IN = 3.3
FORMATS = ("pdf", "png")
#: Okabe-Ito colour-blind-safe palette.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
STYLE = {
    **{key: 8 for key in ("font.size", "legend.fontsize", "legend.title_fontsize")},
    **{f"{part}.{key}": 8 for part, key in (("axes", "titlesize"), ("axes", "labelsize"))},
    **{f"{axis}tick.labelsize": 8 for axis in "xy"},
    **{f"{axis}tick.major.{key}": value for axis in "xy" for key, value in (("width", 0.6), ("size", 2.5))},
    "figure.titlesize": 9,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
    "legend.frameon": False,
    "legend.handlelength": 1.6,
    "legend.borderaxespad": 0.3,
    "pdf.fonttype": 42,  # TrueType fonts embedded
    "ps.fonttype": 42,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}
#: Heatmap cells without trials.
NO_DATA_COLOR = "#e6e6e6"


def _new_figure(height: float, width: float = COLUMN_WIDTH_IN) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``stem.<format>`` for each format; return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, format=fmt)
        paths.append(path)
    return paths


def _text_color(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def run_labels(runs: pd.DataFrame) -> list[str]:
    """Short, unique legend labels: the policy, plus split and scene when runs differ in them, plus
    the run folder's name when still ambiguous."""
    labels = runs["policy"].astype(str).tolist()
    extras = []
    for column in ("split", "scene"):
        if column in runs and runs[column].nunique(dropna=False) > 1:
            extras.append(runs[column].map(lambda v: "" if v is None or v != v else str(v)).tolist())
    if extras:
        labels = [
            f"{label} ({', '.join(e for e in parts if e)})" if any(parts) else label
            for label, *parts in zip(labels, *extras, strict=True)
        ]
    if len(set(labels)) < len(labels) and "run" in runs:
        names = [Path(str(p)).name for p in runs["run"]]
        labels = [f"{label} [{name}]" for label, name in zip(labels, names, strict=True)]
    return labels


def _shorten(text: str, width: int) -> str:
    """``text`` cut in the middle to at most ``width`` characters."""
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "\u2026" + text[len(text) - (width - 1 - head) :]


def _cycle(values: Sequence, n: int) -> list:
    return [values[i % len(values)] for i in range(n)]


#: Candidate label offsets (points) and alignments around a scatter point, in order of preference.
_LABEL_SPOTS = (
    ((4, 2), "left", "bottom"),
    ((4, -2), "left", "top"),
    ((-4, 2), "right", "bottom"),
    ((-4, -2), "right", "top"),
    ((0, 5), "center", "bottom"),
    ((0, -5), "center", "top"),
)


def place_point_labels(
    fig: Figure, ax, points: Sequence[tuple[float, float]], names: Sequence[str], fontsize: float = 7
) -> None:
    """Label scatter points, choosing for each label the first spot around its point that stays inside
    the axes and overlaps no earlier label, no other point and no legend (else the least overlapping)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.transforms import Bbox

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw_without_rendering()
    inside = ax.get_window_extent(renderer)
    taken: list[Bbox] = []
    legend = ax.get_legend()
    if legend is not None:
        taken.append(legend.get_window_extent(renderer))
    pad = 3 * fig.dpi / 72
    dots = [ax.transData.transform(p) for p in points]
    marks = [Bbox.from_extents(x - pad, y - pad, x + pad, y + pad) for x, y in dots]

    def overlap(a: Bbox, b: Bbox) -> float:
        w = min(a.x1, b.x1) - max(a.x0, b.x0)
        h = min(a.y1, b.y1) - max(a.y0, b.y0)
        return max(w, 0) * max(h, 0)

    for index, (point, name) in enumerate(zip(points, names, strict=True)):
        best = None
        for offset, ha, va in _LABEL_SPOTS:
            text = ax.annotate(
                name, point, xytext=offset, textcoords="offset points", ha=ha, va=va, fontsize=fontsize
            )
            text.set_in_layout(False)
            box = text.get_window_extent(renderer)
            others = taken + [m for i, m in enumerate(marks) if i != index]
            outside = box.width * box.height - overlap(box, inside)
            cost = outside * 10 + sum(overlap(box, other) for other in others)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, text, box)
            else:
                text.remove()
            if cost == 0:
                break
        taken.append(best[2])


def short_names(paths: Sequence[Path]) -> list[str]:
    """The shortest trailing part of each path (``a/b`` rather than ``b``) that tells them apart."""
    parts = [Path(p).parts for p in paths]
    for depth in range(1, max((len(p) for p in parts), default=1) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(p) for p in paths]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")
