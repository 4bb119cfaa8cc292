"""Shared pieces of the trainer tests: tiny configs, a synthetic episode store, a fixed batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trainer.data.stats import compute_dataset_stats, write_stats
from trainer.data.store import Episode, EpisodeStore, EpisodeWriter

TINY = [
    "model.history_length=2",
    "model.action_chunk_size=3",
    "model.image_size=32",
    "model.head_hidden=32",
    "train.batch_size=2",
    "train.max_steps=2",
    "train.log_every=1",
    "data.num_workers=0",
    "optim.warmup_steps=1",
    "data.val_fraction=0",
]


def _episode(rng: np.random.Generator, n: int, task: str, instruction: str) -> Episode:
    img = rng.integers(0, 255, size=(n, 24, 24, 3), dtype=np.uint8)
    rel = np.clip(rng.normal(0, 0.3, size=(n, 7)), -1, 1).astype(np.float32)
    rel[:, 6] = np.where(rng.random(n) > 0.5, 1.0, -1.0)
    data = {
        "rgb_static": img,
        "rgb_gripper": img[:, :16, :16],
        "robot_obs": rng.normal(size=(n, 15)).astype(np.float32),
        "rel_actions": rel,
        "actions": rel.copy(),
    }
    return Episode(data, {"task": task, "instruction": instruction})


def make_tiny_data(root: Path) -> Path:
    """Two short random episodes (11 frames) with their statistics."""
    rng = np.random.default_rng(0)
    writer = EpisodeWriter(root, env={"suite": "calvin"})
    writer.add(_episode(rng, 6, "open_drawer", "pull the drawer open"))
    writer.add(_episode(rng, 5, "turn_on_led", "press the button to light the green led"))
    write_stats(root, compute_dataset_stats(EpisodeStore(root)))
    return root


def fixed_batch(tokenizer_len: int = 0) -> dict:
    g = torch.Generator().manual_seed(0)
    b, h, c = 2, 2, 3
    actions = torch.rand(b, h, c, 7, generator=g) * 2 - 1
    actions[..., 6] = torch.where(actions[..., 6] > 0, 1.0, -1.0)
    return {
        "observations": {
            "images": {
                "rgb_static": torch.rand(b, h, 3, 32, 32, generator=g),
                "rgb_gripper": torch.rand(b, h, 3, 32, 32, generator=g),
            },
            "states": torch.randn(b, h, 15, generator=g),
        },
        "history_mask": torch.tensor([[False, True], [True, True]]),
        "actions": actions,
        "action_mask": torch.ones(b, h, c, dtype=torch.bool),
        "language_instruction": ["open the drawer", "turn on the led"],
    }
