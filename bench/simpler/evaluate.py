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


class EpisodeRunner:
    """Plays episodes with one policy, keeping the env of the current task (a new task builds a new one)."""

    def __init__(
        self, policy: Any, run_seed: int, cameras: tuple[str, ...], image_size: int, official: bool = False
    ) -> None:
        self.policy, self.run_seed = policy, run_seed
        self.cameras, self.image_size, self.official = cameras, image_size, official
        self.env: Any = None

    def _env_for(self, key: EpisodeKey) -> Any:
        if self.env is not None and self.env.task.name == key.task:
            return self.env
        self.close()
        if self.official:
            from envs.simpler.official import OfficialSimplerEnv

            self.env = OfficialSimplerEnv(key.task, key.variant, image_size=self.image_size)
        else:
            from envs.simpler.env import SimplerEnv

            self.env = SimplerEnv(key.task, key.variant, cameras=self.cameras, image_size=self.image_size)
        return self.env

    def run(self, key: EpisodeKey) -> dict:
        return run_episode(self._env_for(key), self.policy, key, self.run_seed)

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None


_WORKER: EpisodeRunner | None = None


def _init_worker(policy_spec: str, run_seed: int, cameras: tuple, image_size: int, official: bool) -> None:
    """Worker process: build its own policy from the spec (episodes are seeded, so results do not
    depend on which worker plays them)."""
    global _WORKER
    from policies.registry import make_policy

    _WORKER = EpisodeRunner(make_policy(policy_spec), run_seed, cameras, image_size, official)


def _work(key: EpisodeKey) -> dict:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.run(key)


def run_parallel(
    policy_spec: str,
    keys: list[EpisodeKey],
    workers: int,
    run_seed: int,
    cameras: tuple[str, ...],
    image_size: int,
    official: bool = False,
) -> Iterable[dict]:
    """Episode records from ``workers`` processes as they finish (contiguous blocks of ``keys`` per
    worker, so each mostly keeps one env). A worker that dies fails the run with the reason."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = mp.get_context("spawn")
    initargs = (policy_spec, run_seed, cameras, image_size, official)
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=initargs
    ) as pool:
        futures = [pool.submit(_work, key) for key in keys]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BrokenProcessPool as exc:
            raise RuntimeError(f"a worker process died ({exc}); finished episodes are kept") from None
        finally:
            for future in futures:
                future.cancel()
