"""CALVIN-style figures: success vs instructions in a row, the per-task heatmap and the backbone x
structure design grid (:func:`calvin_figures` draws all three for the CALVIN suite)."""

from __future__ import annotations

import math
import re
import textwrap
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd

from bench.figures.common import (
    COLUMN_WIDTH_IN,
    FORMATS,
    NO_DATA_COLOR,
    PALETTE,
    STYLE,
    _cycle,
    _new_figure,
    _shorten,
    _slug,
    _text_color,
    run_labels,
    save_figure,
)

# --- (a) success vs instructions in a row ----------------------------------------------------------


def plot_success_curve(
    runs: pd.DataFrame,
    stem: str | Path,
    published: pd.DataFrame | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Success vs instructions in a row (1..5), one line per run (rows of
    :func:`bench.results.runs_table`) with its Wilson band; ``published`` rows (``policy``, ``sr1..sr5``)
    are grey dashed lines.
    """
    x = np.arange(1, 6)
    with mpl.rc_context(STYLE):
        n_lines = len(runs) + (0 if published is None else len(published))
        labels = [
            label if n is None or n != n else f"{label}, n={int(n)}"
            for label, n in zip(run_labels(runs), runs.get("n_chains", [None] * len(runs)), strict=True)
        ]
        if published is not None:
            labels += [f"{row['policy']}, {row.get('split', '')} (pub.)" for _, row in published.iterrows()]
        outside = n_lines > 4
        ncol = 2 if max(map(len, labels), default=0) <= 24 else 1
        fig = _new_figure(2.3 + (0.16 * math.ceil(n_lines / ncol) + 0.1 if outside else 0))
        ax = fig.add_subplot()
        for (_, row), label, color in zip(
            runs.iterrows(), labels[: len(runs)], _cycle(PALETTE, len(runs)), strict=True
        ):
            rates = np.array([row[f"sr{i}"] for i in x], dtype=float)
            low = np.array([row[f"sr{i}_low"] for i in x], dtype=float)
            high = np.array([row[f"sr{i}_high"] for i in x], dtype=float)
            ax.fill_between(x, low, high, color=color, alpha=0.15, linewidth=0)
            ax.plot(x, rates, marker="o", color=color, label=label, clip_on=False)
        if published is not None:
            # Grey level and dash pattern staggered so that the first 9 published curves all differ.
            greys = [("0.3", "0.5", "0.68")[i % 3] for i in range(len(published))]
            styles = [("--", ":", "-.")[(i + i // 3) % 3] for i in range(len(published))]
            for (_, row), label, color, style in zip(
                published.iterrows(), labels[len(runs) :], greys, styles, strict=True
            ):
                rates = [row[f"sr{i}"] for i in x]
                ax.plot(x, rates, linestyle=style, color=color, linewidth=1.0, label=label)
        ax.set_xticks(x)
        ax.set_xlim(0.8, 5.2)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("instructions completed in a row")
        ax.set_ylabel("success rate")
        ax.grid(axis="y", linewidth=0.4, alpha=0.5)
        if outside:
            fig.legend(loc="outside lower center", ncol=ncol, handlelength=1.4, columnspacing=1.0)
        else:
            ax.legend(loc="best")
        return save_figure(fig, stem, formats)


def _heatmap(ax, values: np.ndarray, vmax: float) -> tuple:
    """``values`` as an image on ``ax`` (NaN cells grey), column labels on top, no ticks or spines."""
    cmap = mpl.colormaps["viridis"].with_extremes(bad=NO_DATA_COLOR)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=vmax, aspect="auto")
    ax.xaxis.tick_top()
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return image, cmap


# --- (b) per-task heatmap --------------------------------------------------------------------------


def calvin_task_order() -> list[str]:
    """The 34 CALVIN tasks grouped by category (``envs.calvin.chains.TASKS``)."""
    try:
        from envs.calvin.chains import TASKS
    except ImportError:  # pragma: no cover - the suite is part of the package
        return []
    return list(TASKS)


def per_task_frame(runs: Sequence[Mapping], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Long table ``label, task, successes, trials, rate`` from loaded runs' ``per_task`` summaries."""
    rows = []
    for i, run in enumerate(runs):
        label = labels[i] if labels is not None else run["summary"]["policy"]
        for task, entry in run["summary"].get("per_task", {}).items():
            k, n = entry["successes"], entry["trials"]
            rows.append(
                {"label": label, "task": task, "successes": k, "trials": n, "rate": k / n if n else None}
            )
    return pd.DataFrame(rows, columns=["label", "task", "successes", "trials", "rate"])


def plot_task_heatmap(
    per_task: pd.DataFrame,
    stem: str | Path,
    tasks: Sequence[str] | None = None,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Per-task success of :func:`per_task_frame` rows: tasks as rows (``tasks``, default
    CALVIN's 34 by category, then any other), runs as columns, cells ``k/n`` (% with many columns), grey
    without trials.
    """
    order = list(tasks) if tasks is not None else calvin_task_order()
    order += sorted(set(per_task["task"]) - set(order))
    labels = list(dict.fromkeys(per_task["label"]))
    k = per_task.pivot_table(index="task", columns="label", values="successes", aggfunc="sum")
    n = per_task.pivot_table(index="task", columns="label", values="trials", aggfunc="sum")
    k = k.reindex(index=order, columns=labels)
    n = n.reindex(index=order, columns=labels)
    rate = (k / n.where(n > 0)).to_numpy(dtype=float)
    n_cols = len(labels)
    width = max(COLUMN_WIDTH_IN, 1.75 + 0.32 * n_cols)
    rotated = n_cols > 4 or sum(map(len, labels)) > 30  # horizontal labels only while they fit
    shown = (
        [_shorten(label, 32) for label in labels]
        if rotated
        else [textwrap.fill(label, 14) for label in labels]
    )
    # Room for the column labels: their length when rotated, their number of lines otherwise.
    label_h = 0.065 * max(map(len, shown)) if rotated else 0.14 * max(s.count("\n") + 1 for s in shown)
    with mpl.rc_context(STYLE):
        fig = _new_figure(0.135 * len(order) + 1.0 + label_h, width)
        ax = fig.add_subplot()
        image, cmap = _heatmap(ax, rate, 1.0)
        ax.set_yticks(range(len(order)), [t.replace("_", " ") for t in order])
        ax.set_xticks(range(n_cols), shown, rotation=90 if rotated else 0)
        ax.set_xticks(np.arange(-0.5, n_cols), minor=True)
        ax.set_yticks(np.arange(-0.5, len(order)), minor=True)
        ax.grid(which="minor", color="white", linewidth=0.6)
        ax.tick_params(which="minor", length=0)
        as_counts = n_cols <= 4
        for i in range(len(order)):
            for j in range(n_cols):
                trials = n.iat[i, j]
                if not trials or trials != trials:
                    continue
                text = f"{int(k.iat[i, j])}/{int(trials)}" if as_counts else f"{100 * rate[i, j]:.0f}"
                color = _text_color(cmap(rate[i, j]))
                ax.text(j, i, text, ha="center", va="center", fontsize=7 if as_counts else 6.5, color=color)
        bar = fig.colorbar(image, ax=ax, orientation="horizontal", fraction=0.025, pad=0.01, aspect=30)
        bar.set_label("success rate (grey: not attempted)")
        bar.outline.set_linewidth(0.4)
        return save_figure(fig, stem, formats)


# --- (d) backbone x structure grid -----------------------------------------------------------------


#: Preferred row order of the grid: RoboVLMs' four VLA structures (names compared case- and
#: separator-insensitively); other structures follow alphabetically.
STRUCTURE_ORDER = (
    "one_step_continuous",
    "one_step_discrete",
    "interleaved_continuous",
    "policy_head_continuous",
)


def _structure_key(name: str) -> tuple[int, str]:
    norm = re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")
    return (STRUCTURE_ORDER.index(norm) if norm in STRUCTURE_ORDER else len(STRUCTURE_ORDER), norm)


def design_rows(runs: pd.DataFrame) -> pd.Series:
    """Each run's row of the design grid: its structure, or ``structure / head`` where runs of one
    structure differ in their action head (RoboVLMs' head comparison on the policy-head structure)."""
    structure = runs["structure"].astype(str)
    if "head" not in runs:
        return structure
    heads = runs["head"].where(runs["head"].notna(), None)
    varied = {s for s, group in heads.groupby(structure) if group.nunique(dropna=False) > 1}
    return pd.Series(
        [f"{s} / {h}" if s in varied and h is not None else s for s, h in zip(structure, heads, strict=True)],
        index=runs.index,
    )


def design_grid(runs: pd.DataFrame, value: str = "avg_len") -> pd.DataFrame:
    """Structure (rows; split by head where heads differ, see :func:`design_rows`) x backbone (columns)
    table of ``value``; runs sharing a cell are pooled, weighted by their number of chains; missing
    combinations are NaN."""
    data = runs.dropna(subset=["backbone", "structure", value]).copy()
    weights = data["n_chains"].fillna(1).astype(float) if "n_chains" in data else pd.Series(1.0, data.index)
    data["_w"], data["_wv"] = weights, weights * data[value].astype(float)
    data["_row"] = design_rows(data)
    sums = data.groupby(["_row", "backbone"])[["_w", "_wv"]].sum()
    grid = (sums["_wv"] / sums["_w"]).unstack("backbone")
    rows = sorted(grid.index, key=lambda row: _structure_key(row.split(" / ")[0]) + (row,))
    grid = grid.reindex(index=rows, columns=sorted(grid.columns, key=str))
    grid.index.name = "structure"
    return grid


def plot_design_grid(
    runs: pd.DataFrame,
    stem: str | Path,
    value: str = "avg_len",
    vmax: float = 5.0,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """Heatmap of ``value`` (CALVIN average length by default, colour scale 0..``vmax``) over VLA
    structures (rows) x backbones (columns), cells annotated; missing combinations are grey."""
    grid = design_grid(runs, value)
    if grid.empty:
        raise ValueError("no run records both 'backbone' and 'structure'")
    n_rows, n_cols = grid.shape
    with mpl.rc_context(STYLE):
        fig = _new_figure(0.75 + 0.36 * n_rows, max(COLUMN_WIDTH_IN, 1.6 + 0.42 * n_cols))
        ax = fig.add_subplot()
        values = grid.to_numpy(dtype=float)
        image, cmap = _heatmap(ax, values, vmax)
        columns = [str(c) for c in grid.columns]
        if n_cols > 4 or max(map(len, columns)) > 8:
            ax.set_xticks(range(n_cols), columns, rotation=40, ha="left", rotation_mode="anchor")
        else:
            ax.set_xticks(range(n_cols), columns)
        ax.set_yticks(range(n_rows), [textwrap.fill(str(r).replace("_", " "), 13) for r in grid.index])
        for i in range(n_rows):
            for j in range(n_cols):
                v = values[i, j]
                text, color = ("-", "0.4") if math.isnan(v) else (f"{v:.2f}", _text_color(cmap(v / vmax)))
                ax.text(j, i, text, ha="center", va="center", color=color)
        bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03, aspect=15)
        bar.set_label("average length" if value == "avg_len" else value.replace("_", " "))
        bar.outline.set_linewidth(0.4)
        return save_figure(fig, stem, formats)


# --- all of them -----------------------------------------------------------------------------------


def calvin_figures(
    runs: Sequence[Mapping],
    out: Path,
    *,
    formats: Sequence[str] = FORMATS,
    log: Callable[[str], None] = print,
    published: bool = False,
    **_: object,
) -> list[Path]:
    """``success_in_a_row``, ``task_success_heatmap`` and ``design_grid_avg_len[_<split>_<scene>]`` of
    loaded CALVIN-style runs; a figure without inputs is skipped with a one-line ``log``."""
    from bench.results import run_row
    from bench.tables import calvin_published_rows

    if not runs:
        log("success_in_a_row, task_success_heatmap, design_grid_avg_len: skipped (no CALVIN-style runs)")
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pd.DataFrame([run_row(run) for run in runs])
    pub = calvin_published_rows() if published else None
    written = plot_success_curve(table, out / "success_in_a_row", published=pub, formats=formats)
    per_task = per_task_frame(runs, run_labels(table))
    if per_task.empty:
        log("task_success_heatmap: skipped (no per_task table in the CALVIN-style runs)")
    else:
        written += plot_task_heatmap(per_task, out / "task_success_heatmap", formats=formats)
    design = table.dropna(subset=["backbone", "structure"]) if "backbone" in table else table.iloc[0:0]
    if design.empty:
        log("design_grid_avg_len: skipped (no run records 'backbone' and 'structure')")
        return written
    # one grid per set-up that makes runs comparable: the split, the scene, a fixed first task, the budget
    keys = [k for k in ("split", "scene", "first_task", "max_steps") if k in design]
    groups = list(design.groupby(keys, dropna=False))
    for setting, group in groups:
        named = [
            str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
            for v in setting
            if v == v and v is not None  # NaN != NaN
        ]
        suffix = "" if len(groups) == 1 else "_" + _slug("_".join(named))
        stem = f"design_grid_avg_len{suffix}"
        if "checkpoint" in group:  # pooled runs are meant to be repeats of one design, not other models
            cells = group.assign(_row=design_rows(group)).groupby(["_row", "backbone"])["checkpoint"]
            for (row, backbone), checkpoints in cells:
                if checkpoints.nunique() > 1:
                    log(
                        f"{stem}: cell {row} x {backbone} pools {len(checkpoints)} runs of "
                        f"{checkpoints.nunique()} checkpoints; pass bench.figures only the runs to compare"
                    )
        written += plot_design_grid(group, out / stem, formats=formats)
    return written
