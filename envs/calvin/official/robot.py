"""CALVIN's robot, loaded on its own PyBullet client.

``calvin_env.robot.robot.Robot.load`` makes a few PyBullet calls without ``physicsClientId`` (the
white base cylinder, ``computeDofCount``): they go to client 0, which is CALVIN's own only when its
env is the first PyBullet connection of the process. This subclass runs CALVIN's ``load`` with those
calls directed to the robot's client, so that CALVIN's env can live beside other PyBullet envs (ours,
in a side-by-side check, or an earlier one in the same test process). Import it only once the
checkout is importable (the backend names it as the robot's hydra ``_target_``).
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

from calvin_env.robot import robot as calvin_robot


class _OnClient:
    """The pybullet module with ``physicsClientId`` defaulting to one client."""

    def __init__(self, module: ModuleType, cid: int) -> None:
        self._module, self._cid = module, cid

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._module, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("physicsClientId", self._cid)
            return attr(*args, **kwargs)

        return call


class ClientBoundRobot(calvin_robot.Robot):
    """CALVIN's ``Robot`` whose ``load`` uses only its own PyBullet client."""

    def load(self) -> None:
        module = calvin_robot.p
        calvin_robot.p = _OnClient(module, self.cid)
        try:
            super().load()
        finally:
            calvin_robot.p = module
