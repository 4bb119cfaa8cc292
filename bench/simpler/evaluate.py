"""The episode protocol of the SimplerEnv-style suite: episodes of (task, variant, layout).

An episode resets the task's env with a seed that is a pure function of (run seed, task, variant,
episode), resets the policy with the instruction and SimplerEnv's metadata, and steps until the env
ends the episode or the policy asks to stop (an optional 8th action value > 0.5); success is read at
the end. Played by :mod:`bench.engine` like every suite.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.engine import BasePlayer, Job, UnitGenerator, env_call, play_unit
from bench.suites import load_object
from bench.video import VideoRecorder
from envs.simpler.tasks import FAMILIES, TASKS


@dataclass(frozen=True)
class EpisodeKey:
    task: str
    variant: str
    episode: int

    def seed(self, run_seed: int) -> int:
        """Env and policy seed: a pure function of (run seed, task, variant, episode)."""
        return zlib.crc32(f"{run_seed}/{self.task}/{self.variant}/{self.episode}".encode()) & 0x7FFFFFFF

    def __str__(self) -> str:
        return f"{self.task}/{self.variant}/{self.episode}"


def plan_episodes(tasks: Iterable[str], variants: Iterable[str], per_variant: int | None) -> list[EpisodeKey]:
    """Every (task, variant, episode) of a run; ``per_variant=None`` takes the reference counts."""
    variants = list(variants)
    keys = []
    for task in tasks:
        n = TASKS[task].episodes if per_variant is None else per_variant
        keys += [EpisodeKey(task, v, i) for v in variants for i in range(n)]
    return keys


#: scene set -> its env class: our primitive Panda scenes, SimplerEnv's own embodiments, ManiSkill3's ports
SCENE_SETS = {
    "panda": "envs.simpler.env:SimplerEnv",
    "simpler": "envs.simpler.real_env:SimplerRealEnv",
    "official": "envs.simpler.official:OfficialSimplerEnv",
}


class TaskEnvs:
    """The env of the current task, kept while episodes stay on that task (a new task builds a new one)."""

    def __init__(self, cameras: tuple[str, ...], image_size: int, scenes: str, render: bool) -> None:
        self.cameras, self.image_size, self.scenes, self.render = cameras, image_size, scenes, render
        self.env: Any = None

    def get(self, key: EpisodeKey) -> Any:
        if self.env is not None and self.env.task.name == key.task:
            return self.env
        self.close()
        kwargs: dict[str, Any] = {"image_size": self.image_size}
        if self.render:
            kwargs["render_mode"] = "rgb_array"
        if self.scenes not in SCENE_SETS:
            raise ValueError(f"unknown scene set {self.scenes!r}; valid: {', '.join(SCENE_SETS)}")
        env_class = load_object(SCENE_SETS[self.scenes], f"scene set {self.scenes}")
        if self.scenes != "official":  # ManiSkill3's own ports render their one camera
            kwargs["cameras"] = self.cameras
        self.env = env_class(key.task, key.variant, **kwargs)
        return self.env

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


class _OneEnv:
    """:class:`TaskEnvs` over an env the caller built."""

    def __init__(self, env: Any) -> None:
        self.env = env

    def get(self, key: EpisodeKey) -> Any:
        return self.env


@dataclass(frozen=True)
class EpisodePlayer(BasePlayer):
    """The :class:`bench.engine.Player` of SimplerEnv episodes (picklable)."""

    seed: int
    cameras: tuple[str, ...] = ("static",)
    image_size: int = 224
    #: which scenes: ``panda`` (our offline primitive scenes), ``simpler`` (SimplerEnv's own robots,
    #: objects and overlays) or ``official`` (ManiSkill3's own Bridge ports)
    scenes: str = "panda"
    video_dir: str | None = None

    def open(self) -> TaskEnvs:
        return TaskEnvs(self.cameras, self.image_size, self.scenes, self.video_dir is not None)

    def check_action(self, action: Any, source: str) -> np.ndarray:
        raw = np.asarray(action, dtype=np.float64).reshape(-1)
        if raw.shape not in ((7,), (8,)):
            raise ValueError(
                f"{source}: action must have 7 values (or 8 with a terminate flag), got {raw.shape}"
            )
        if not np.all(np.isfinite(raw)):
            raise ValueError(f"{source}: action has NaN/inf: {raw.tolist()}")
        return raw

    def new_record(self, job: Job) -> dict[str, Any]:
        key = job.unit
        return {
            "task": key.task,
            "variant": key.variant,
            "episode": key.episode,
            "family": TASKS[key.task].family,
            "success": False,
            "partial": False,
            "steps": 0,
            "instructions": [],
            "stop_reason": "step_limit",
            "seed": key.seed(self.seed),
        }

    def play(self, envs: Any, job: Job, rec: dict) -> UnitGenerator:
        key = job.unit
        spec = TASKS[key.task]
        family = FAMILIES[spec.family]
        try:
            env = envs.get(key)
        except Exception as exc:  # no env, no episode: the run stops (e.g. no Vulkan device)
            raise RuntimeError(f"could not create the environment of {key.task}: {exc}") from exc
        options = {"episode": key.episode, "variant": key.variant}
        obs, info = env_call("env.reset", env.reset, seed=rec["seed"], options=options)
        reset_info = {
            "suite": "simpler",
            "task": key.task,
            "family": spec.family,
            "gripper": family.gripper,
            "control_hz": family.control_hz,
            "episode": key.episode,
            "variant": key.variant,
            "objects": info["objects"],
            "embodiment": info.get("embodiment", "panda"),
        }
        instruction = info["instruction"]
        rec["instructions"].append(instruction)
        reset: dict | None = {"instruction": instruction, "seed": rec["seed"], "info": reset_info}
        video_dir = self.video_dir if job.record else None
        with VideoRecorder(env, video_dir, f"{key.task}_{key.variant}_{key.episode:03d}", rec) as video:
            while True:
                video.add(instruction)
                action = yield obs, reset
                reset = None
                if action.shape == (8,) and action[7] > 0.5:
                    rec["stop_reason"] = "policy_terminated"
                    break
                obs, _, terminated, truncated, info = env_call("env.step", env.step, action[:7])
                rec["steps"] += 1
                if info["instruction"] != instruction:  # the apple task switches mid-episode
                    instruction = info["instruction"]
                    rec["instructions"].append(instruction)
                    continuing = {**reset_info, "continuing": True}
                    reset = {"instruction": instruction, "seed": rec["seed"], "info": continuing}
                if terminated or truncated:
                    break
        rec["success"] = bool(info["success"])
        rec["partial"] = bool(info.get("partial", False))


def run_episode(env: Any, policy: Any, key: EpisodeKey, run_seed: int) -> dict:
    """Play one episode of ``key`` in ``env`` with ``policy`` (slot 0) in this process."""
    return play_unit(policy, EpisodePlayer(run_seed), _OneEnv(env), Job(0, key))
