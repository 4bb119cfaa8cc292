"""The one policy interface that every suite, the harness and every policy family share.

A policy is stateful per *slot*: one slot per environment that it serves. The harness calls
``reset`` whenever an environment in a slot starts a new instruction (memory is cleared) and then
``act_batch`` with the observations of all slots that wait for an action, so that one policy call
serves many parallel environments.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Observation = Mapping[str, Any]
ACTION_DIM = 7
#: Action conventions a policy may declare (:attr:`Policy.action_conventions`), and what they mean.
ACTION_CONVENTIONS = {
    "pose/relative": "CALVIN relative: xyz and Euler deltas in [-1, 1] (scaled by the env), gripper +1 open / -1 close",
    "pose/absolute": "CALVIN absolute: target TCP position and Euler angles, gripper +1 open / -1 close",
    "delta_pose/relative_gripper": "SimplerEnv delta pose; the gripper value moves its closing target (Google robot)",
    "delta_pose/absolute_gripper": "SimplerEnv delta pose; the gripper value is its opening target (WidowX)",
}


class Policy(ABC):
    """Base class of every policy.

    Subclasses implement :meth:`reset` and either :meth:`act` or :meth:`act_batch` (the default of
    each calls the other). Actions are 7-D: xyz delta, Euler xyz delta (both in [-1, 1], scaled by
    the environment), gripper (+1 open, -1 close).
    """

    #: Whether the policy reads camera images; the harness turns cameras off when it does not.
    needs_images: bool = True
    #: ``"relative"`` (delta pose, the default) or ``"absolute"`` (target TCP pose).
    action_mode: str = "relative"
    #: The :data:`ACTION_CONVENTIONS` the policy's actions follow; a suite refuses, before the first
    #: step, a policy whose conventions do not include the one it needs. None: not declared (unchecked).
    action_conventions: tuple[str, ...] | None = None
    #: Camera name -> (height, width) the policy was trained on (e.g. ``{"rgb_static": (200, 200)}``);
    #: a suite builds its cameras at these sizes unless the user passes others (and then warns).
    camera_sizes: dict[str, tuple[int, int]] | None = None

    @abstractmethod
    def reset(
        self,
        instruction: str,
        *,
        slot: int = 0,
        seed: int | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Start a new instruction in ``slot``: clear that slot's memory.

        ``seed`` makes stochastic policies reproducible per episode whatever the slot assignment;
        ``info`` carries suite metadata (e.g. ``{"suite": "calvin", "scene": "D"}``).
        """

    def act(self, obs: Observation, *, slot: int = 0) -> np.ndarray:
        """One 7-D action for the observation of one slot."""
        return np.asarray(self.act_batch([obs], [slot])[0], dtype=np.float32)

    def act_batch(self, observations: Sequence[Observation], slots: Sequence[int]) -> np.ndarray:
        """Actions of shape ``(len(slots), 7)`` for several slots at once."""
        if type(self).act is Policy.act:
            raise TypeError(f"{type(self).__name__} must implement act() or act_batch()")
        return np.stack([self.act(o, slot=s) for o, s in zip(observations, slots, strict=True)]).astype(
            np.float32
        )

    def provenance(self) -> dict[str, Any]:
        """What identifies this policy's weights (e.g. a checkpoint's path and hash), for run records."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (servers, GPU memory)."""


def check_action(action: Any, *, source: str = "policy") -> np.ndarray:
    """Validate one action: shape (7,), finite. Raises ``ValueError`` naming the problem."""
    arr = np.asarray(action, dtype=np.float64)
    if arr.shape != (ACTION_DIM,):
        raise ValueError(f"{source}: action must have shape ({ACTION_DIM},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = [i for i in range(ACTION_DIM) if not np.isfinite(arr[i])]
        raise ValueError(f"{source}: action has NaN/inf in dimension(s) {bad}: {arr.tolist()}")
    return arr
