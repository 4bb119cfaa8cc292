"""A held-out validation loss: whole episodes kept out of training, scored without augmentation.

``data.val_fraction`` of the episodes (a seeded choice, so a run is reproducible from its config)
never reach the training sampler. Every ``train.val_every`` optimiser steps the model's loss is
averaged over up to ``train.val_samples`` frames spread evenly over those episodes, in eval mode
and without augmentation, and logged as ``val_loss`` plus its parts (``val_loss_arm_mse`` ...).
A validation loss that stops falling while the training loss keeps falling is overfitting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset


def split_episodes(n_episodes: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) episode indices; validation gets round(fraction * n), at least one when
    fraction > 0, and never all of them."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {fraction}")
    n_val = 0 if fraction == 0 else min(n_episodes - 1, max(1, round(fraction * n_episodes)))
    if n_val < 1:
        return list(range(n_episodes)), []
    order = np.random.default_rng(seed).permutation(n_episodes)
    val = sorted(int(i) for i in order[:n_val])
    train = sorted(int(i) for i in order[n_val:])
    return train, val


def frame_indices(episodes_meta: Sequence[dict[str, Any]], episodes: Sequence[int]) -> list[int]:
    """Global frame indices (dataset sample indices) of the given episodes."""
    out: list[int] = []
    for e in episodes:
        out.extend(range(int(episodes_meta[e]["start"]), int(episodes_meta[e]["end"])))
    return out


def validation_loader(dataset: Any, frames: Sequence[int], max_samples: int, batch_size: int) -> DataLoader:
    """A fixed, ordered loader over at most ``max_samples`` frames spread evenly over ``frames``."""
    if len(frames) > max_samples:
        picks = np.linspace(0, len(frames) - 1, max_samples).round().astype(int)
        frames = [frames[i] for i in picks]
    return DataLoader(Subset(dataset, list(frames)), batch_size=batch_size, shuffle=False, num_workers=0)


@torch.no_grad()
def validation_loss(
    model: torch.nn.Module,
    loader: DataLoader,
    history_weighting: str,
    autocast: Callable[[], AbstractContextManager],
) -> dict[str, float]:
    """Sample-weighted mean loss and loss parts over the loader, in eval mode (restored after)."""
    was_training = model.training
    model.eval()
    totals: dict[str, float] = {}
    n = 0
    try:
        for batch in loader:
            b = len(batch["language_instruction"])
            with autocast():
                loss, parts = model.compute_loss(batch, history_weighting)
            for k, v in {"loss": float(loss), **parts}.items():
                totals[k] = totals.get(k, 0.0) + v * b
            n += b
    finally:
        model.train(was_training)
    return {f"val_{k}": v / max(1, n) for k, v in totals.items()}
