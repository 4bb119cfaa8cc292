"""The CALVIN-style play table behind the real suite's adapter interface (``bench.run --suite real
--env envs.calvin.sim_robot:make_sim_robot``): tests and dry runs of the operator protocol without a
robot, judged by :class:`bench.suites.real.OracleOperator`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SimRobot:
    """The CALVIN-style simulator behind the adapter interface, for tests and dry runs of the protocol:
    ``reset(options={"task": ...})`` starts from the first official chain whose first task it is."""

    def __init__(self, scene: str = "D", cameras: Sequence[str] = (), action_mode: str = "relative") -> None:
        from envs.calvin.env import CalvinEnv

        self.env = CalvinEnv(scene=scene, cameras=tuple(cameras), action_mode=action_mode)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        from envs.calvin.chains import official_chains

        task = (options or {}).get("task")
        chain = next((c for c in official_chains() if c.tasks[0] == task), None)
        if chain is None:
            raise ValueError(f"SimRobot: no official chain starts with task {task!r}")
        return self.env.reset(seed=seed, options={"state": chain.state, "task": task})

    def step(self, action: np.ndarray) -> tuple:
        return self.env.step(action)


def make_sim_robot() -> SimRobot:
    return SimRobot()
