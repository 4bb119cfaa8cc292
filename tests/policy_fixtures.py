"""Policies used by tests through ``--policy tests.policy_fixtures:ClassName``."""

from __future__ import annotations

import numpy as np

from policies.base import Policy


class RaisingPolicy(Policy):
    """Raises on its third action: a policy bug in the middle of a run."""

    needs_images = False

    def __init__(self) -> None:
        self.calls = 0

    def reset(self, instruction, *, slot=0, seed=None, info=None) -> None:
        pass

    def act(self, obs, *, slot=0) -> np.ndarray:
        self.calls += 1
        if self.calls >= 3:
            raise RuntimeError("deliberate failure")
        return np.zeros(7, dtype=np.float32)
