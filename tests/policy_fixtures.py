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


class ResetRaisingPolicy(RaisingPolicy):
    """Raises in ``reset``: every unit fails, the run goes on."""

    def reset(self, instruction, *, slot=0, seed=None, info=None) -> None:
        raise ValueError("cannot reset")


class CloseRaisingPolicy(RaisingPolicy):
    """Acts fine, raises in ``close``: the summary must still be written."""

    def act(self, obs, *, slot=0) -> np.ndarray:
        return np.zeros(7, dtype=np.float32)

    def close(self) -> None:
        raise OSError("the server is gone")


class InitRaisingPolicy(RaisingPolicy):
    """Raises in ``__init__`` (a bug in the user's policy)."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = 1 / 0


class CalvinRelativePolicy(CloseRaisingPolicy):
    """Declares CALVIN's relative actions only."""

    action_conventions = ("pose/relative",)

    def close(self) -> None:
        pass
