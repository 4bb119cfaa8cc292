"""Policies for ``tests/test_remote_policy.py``, served as ``tests.remote_helpers:ProbePolicy``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from policies.base import Observation, Policy


class ProbePolicy(Policy):
    """Reports what it received, so that a test can check what crossed the wire.

    ``reset`` raises ``ValueError`` for the instruction ``"explode"``; ``act_batch`` raises
    ``RuntimeError`` for an observation with a true ``"explode"`` key. Otherwise each action is
    ``[slot, seed of the slot's last reset, len(instruction), image mean, image is uint8,
    sum of "state", number of keys in the reset's info]``.
    """

    needs_images = True
    action_mode = "absolute"

    def __init__(self) -> None:
        self._episodes: dict[int, tuple[str, int, int]] = {}

    def reset(
        self,
        instruction: str,
        *,
        slot: int = 0,
        seed: int | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        if instruction == "explode":
            raise ValueError(f"cannot follow {instruction!r}")
        self._episodes[slot] = (instruction, -1 if seed is None else seed, len(info or {}))

    def act_batch(self, observations: Sequence[Observation], slots: Sequence[int]) -> np.ndarray:
        actions = []
        for obs, slot in zip(observations, slots, strict=True):
            if obs.get("explode"):
                raise RuntimeError(f"kaboom in slot {slot}")
            instruction, seed, n_info = self._episodes[slot]
            image = np.asarray(obs["image"])
            actions.append(
                [
                    slot,
                    seed,
                    len(instruction),
                    float(image.mean()),
                    float(image.dtype == np.uint8),
                    float(np.sum(obs["state"])),
                    n_info,
                ]
            )
        return np.asarray(actions, dtype=np.float64)
