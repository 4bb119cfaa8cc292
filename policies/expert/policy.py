"""The expert policy: picks the task's script and follows it with the waypoint controller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from envs.calvin.scene import get_scene
from policies.base import Observation, Policy
from policies.expert.calvin_scripts import task_script
from policies.expert.controller import WaypointController


class ExpertPolicy(Policy):
    """Scripted controller with privileged state (poses and joint states in ``scene_obs``).

    It reads the task from ``info["task"]`` when the harness gives it, else it maps the
    instruction back to its task; the scene layout comes from ``info["scene"]`` (default D).
    When the reset info names the episode's objects (``info["objects"]``, as SimplerEnv-style
    episodes do) it follows :mod:`policies.expert.simpler_scripts` instead (SimplerEnv's delta-pose
    actions; ``action_mode`` does not apply there).
    """

    needs_images = False
    action_mode = "absolute"  # see policies.expert.controller
    action_conventions = ("pose/absolute", "delta_pose/relative_gripper", "delta_pose/absolute_gripper")

    def __init__(self) -> None:
        self._pending: dict[int, tuple[str, str, np.ndarray | None]] = {}
        self._controllers: dict[int, WaypointController] = {}
        self._simpler: dict[int, Any] = {}

    def reset(
        self,
        instruction: str,
        *,
        slot: int = 0,
        seed: int | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        info = dict(info or {})
        if "objects" in info:  # a SimplerEnv-style episode: its script needs the objects' names
            if info.get("continuing") and slot in self._simpler:
                return  # a mid-episode instruction change: the script already covers it
            from policies.expert.simpler_scripts import script_for

            for key in ("task", "episode", "objects"):
                if key not in info:
                    raise ValueError(f"expert: a reset info with 'objects' lacks {key!r}")
            self._simpler[slot] = script_for(
                info["task"],
                int(info["episode"]),
                tuple(info["objects"]),
                info.get("embodiment", "panda"),
                info.get("variant", "base"),
            )
            return
        self._simpler.pop(slot, None)
        task = info.get("task")
        if task is None:
            from envs.calvin.language import task_from_instruction

            task = task_from_instruction(instruction)
        scene = info.get("scene", "D")
        get_scene(scene)  # validates
        target = info.get("target_pose")  # the env's target, when the harness shares it
        self._pending[slot] = (task, scene, None if target is None else np.asarray(target, dtype=float))
        self._controllers.pop(slot, None)

    def act(self, obs: Observation, *, slot: int = 0) -> np.ndarray:
        if slot in self._simpler:
            return self._simpler[slot].act(obs)
        ctrl = self._controllers.get(slot)
        if ctrl is None:
            if slot not in self._pending:
                raise RuntimeError(f"expert: reset() was not called for slot {slot}")
            task, scene, target = self._pending.pop(slot)
            script = task_script(task, dict(obs), get_scene(scene))
            ctrl = WaypointController(script, dict(obs), start_target=target)
            self._controllers[slot] = ctrl
        return ctrl.act(dict(obs))
