"""Uniform random actions: the benchmark's floor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from policies.base import Observation, Policy


class RandomPolicy(Policy):
    """Draws each action uniformly from [-1, 1]^6 and a random gripper sign.

    Each slot has its own generator, re-seeded at every ``reset`` from the seed the harness gives,
    so a chain's actions do not depend on which slot or worker runs it.
    """

    needs_images = False

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._rngs: dict[int, np.random.Generator] = {}

    def reset(
        self,
        instruction: str,
        *,
        slot: int = 0,
        seed: int | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self._rngs[slot] = np.random.default_rng(self._seed if seed is None else seed)

    def act(self, obs: Observation, *, slot: int = 0) -> np.ndarray:
        rng = self._rngs.setdefault(slot, np.random.default_rng(self._seed))
        action = rng.uniform(-1.0, 1.0, size=7)
        action[6] = 1.0 if action[6] >= 0 else -1.0
        return action.astype(np.float32)

    def act_batch(self, observations: Sequence[Observation], slots: Sequence[int]) -> np.ndarray:
        return np.stack([self.act(o, slot=s) for o, s in zip(observations, slots, strict=True)])
