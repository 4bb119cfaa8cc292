"""The episode loop of the SimplerEnv-style suite: one policy, episodes of (task, variant, layout)."""

from __future__ import annotations

import traceback
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.simpler.tasks import FAMILIES, TASKS


@dataclass(frozen=True)
class EpisodeKey:
    task: str
    variant: str
    episode: int

    def seed(self, run_seed: int) -> int:
        """Env and policy seed: a pure function of (run seed, task, variant, episode)."""
        return zlib.crc32(f"{run_seed}/{self.task}/{self.variant}/{self.episode}".encode()) & 0x7FFFFFFF


def plan_episodes(tasks: Iterable[str], variants: Iterable[str], per_variant: int | None) -> list[EpisodeKey]:
    """Every (task, variant, episode) of a run; ``per_variant=None`` takes the reference counts."""
    variants = list(variants)
    keys = []
    for task in tasks:
        n = TASKS[task].episodes if per_variant is None else per_variant
        keys += [EpisodeKey(task, v, i) for v in variants for i in range(n)]
    return keys


def policy_action(policy: Any, obs: dict) -> tuple[np.ndarray, bool]:
    """The policy's 7-D action and whether it asks to end the episode (an optional 8th value > 0.5)."""
    raw = np.asarray(policy.act(obs, slot=0), dtype=np.float64).reshape(-1)
    if raw.shape not in ((7,), (8,)):
        raise ValueError(f"policy action must have 7 values (or 8 with a terminate flag), got {raw.shape}")
    if not np.all(np.isfinite(raw)):
        raise ValueError(f"policy action has NaN/inf: {raw.tolist()}")
    return raw[:7], bool(raw.shape == (8,) and raw[7] > 0.5)


def run_episode(
    env: Any, policy: Any, key: EpisodeKey, run_seed: int, on_frame: Callable | None = None
) -> dict:
    """Play one episode to the step limit (or the policy's terminate flag); success read at the end."""
    seed = key.seed(run_seed)
    spec = TASKS[key.task]
    family = FAMILIES[spec.family]
    obs, info = env.reset(seed=seed, options={"episode": key.episode, "variant": key.variant})
    reset_info = {
        "suite": "simpler",
        "task": key.task,
        "family": spec.family,
        "gripper": family.gripper,
        "control_hz": family.control_hz,
        "episode": key.episode,
        "variant": key.variant,
        "objects": info["objects"],
    }
    instruction = info["instruction"]
    policy.reset(instruction, slot=0, seed=seed, info=reset_info)
    steps, stop = 0, "step_limit"
    instructions = [instruction]
    try:
        while True:
            if on_frame is not None:
                on_frame(obs, info)
            action, terminate = policy_action(policy, obs)
            if terminate:
                stop = "policy_terminated"
                break
            obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            if info["instruction"] != instruction:  # the apple task switches mid-episode
                instruction = info["instruction"]
                instructions.append(instruction)
                policy.reset(instruction, slot=0, seed=seed, info={**reset_info, "continuing": True})
            if terminated or truncated:
                break
    except Exception as exc:  # a policy that raises fails this episode only
        stop = f"error: {type(exc).__name__}: {exc}"
        return {
            **key.__dict__,
            "family": spec.family,
            "success": False,
            "partial": False,
            "steps": steps,
            "instructions": instructions,
            "stop_reason": stop,
            "traceback": traceback.format_exc(limit=5),
        }
    return {
        **key.__dict__,
        "family": spec.family,
        "success": bool(info["success"]),
        "partial": bool(info.get("partial", False)),
        "steps": steps,
        "instructions": instructions,
        "stop_reason": stop,
        "seed": seed,
    }
