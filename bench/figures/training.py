"""Training curves from ``train_log.jsonl`` / ``train_log.csv`` (format in :mod:`bench.results`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd

from bench.figures.common import FORMATS, PALETTE, STYLE, _cycle, _new_figure, save_figure

# --- (c) training curves ---------------------------------------------------------------------------

#: Columns of a training log that are not plotted as curves.
NON_CURVE_KEYS = frozenset({"step", "epoch", "time", "wall_time", "wall_time_s", "timestamp", "samples"})


def training_keys(logs: Mapping[str, pd.DataFrame], limit: int = 4) -> list[str]:
    """Scalar keys to plot by default, at most ``limit``: ``loss``, then evaluation metrics (keys
    holding ``val``, ``eval``, ``avg_len`` or ``success``), then ``lr``, then other loss parts, then the
    rest (e.g. ``grad_norm``)."""
    keys = list(dict.fromkeys(c for frame in logs.values() for c in frame.columns if c not in NON_CURVE_KEYS))

    def rank(key: str) -> int:
        if key == "loss":
            return 0
        if any(word in key for word in ("val", "eval", "avg_len", "success")):
            return 1
        if key in ("lr", "learning_rate"):
            return 2
        return 3 if "loss" in key else 4

    return sorted(keys, key=rank)[:limit]


def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    out = np.empty_like(values)
    acc = values[0]
    for i, value in enumerate(values):
        acc = weight * acc + (1 - weight) * value
        out[i] = acc
    return out


def plot_training_curves(
    logs: Mapping[str, pd.DataFrame],
    stem: str | Path,
    keys: Sequence[str] | None = None,
    smooth: float = 0.0,
    formats: Sequence[str] = FORMATS,
) -> list[Path]:
    """One panel per scalar key (default :func:`training_keys`; keys absent from every
    log dropped) against ``step``, one line per log (label -> :func:`bench.results.load_train_log`);
    ``smooth`` in [0, 1): EMA weight for ``loss`` keys, the raw curve left faint.
    """
    if not 0 <= smooth < 1:
        raise ValueError(f"smooth must be in [0, 1), got {smooth}")
    keys = [k for k in (keys or training_keys(logs)) if any(k in frame for frame in logs.values())]
    if not keys:
        raise ValueError("no scalar key to plot in the training logs")
    with mpl.rc_context(STYLE):
        legend_h = 0.17 * math.ceil(len(logs) / 3) if len(logs) > 1 else 0
        fig = _new_figure(0.35 + 1.15 * len(keys) + legend_h)
        axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
        for ax, key in zip(axes, keys, strict=True):
            plotted = []
            for (label, frame), color in zip(logs.items(), _cycle(PALETTE, len(logs)), strict=True):
                if key not in frame:
                    continue
                data = frame[["step", key]].dropna()
                if data.empty:
                    continue
                steps, values = data["step"].to_numpy(), data[key].to_numpy(dtype=float)
                plotted.append(values)
                if smooth and "loss" in key and len(values) > 2:
                    ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.6)
                    values = _ema(values, smooth)
                ax.plot(steps, values, color=color, label=label)
            every = np.concatenate(plotted) if plotted else np.array([])
            if "loss" in key and every.size and every.min() > 0 and every.max() / every.min() > 20:
                ax.set_yscale("log")
            if key in ("lr", "learning_rate"):
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            ax.set_ylabel(key.replace("_", " "))
            ax.grid(linewidth=0.4, alpha=0.5)
        axes[-1].set_xlabel("step")
        axes[-1].ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
        if len(logs) > 1:
            fig.legend(
                *axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=min(len(logs), 3)
            )
        return save_figure(fig, stem, formats)
