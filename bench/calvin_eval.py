"""CALVIN's long-horizon protocol: chains of 5 instructions, played by :mod:`bench.engine`.

Per chain (``shared/reference/calvin.md``): reset the env once with the chain's symbolic start state
and a seed of ``(seed, chain index)``; then for each of the 5 tasks call ``env.begin_subtask(task)``,
reset the policy with the task's evaluation instruction and step up to ``max_steps`` times until the
oracle reports ``info["success"]``; the env is not reset between subtasks and the chain stops at its
first failure. The policy's ``reset`` gets ``info={"suite": "calvin", "scene", "task"}``: scripted
experts may read the task; learned policies must only use the instruction.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.engine import Job, UnitGenerator, env_call, run_units
from bench.video import VideoRecorder
from envs.calvin.backends import BACKENDS, make_calvin_env
from policies.base import Policy, check_action

CAMERAS = ("static", "gripper")
#: ``make_env(scene, cameras, **kwargs) -> env``; kwargs may hold ``render_mode`` and ``action_mode``.
EnvFactory = Callable[..., Any]
#: ``--env`` backends: our PyBullet play table (``ours``) or CALVIN's own env (``calvin_env``).
ENV_BACKENDS = BACKENDS


@dataclass(frozen=True)
class CalvinEnvFactory:
    """Picklable env factory of the ``backend`` env."""

    static_size: int = 200
    gripper_size: int = 84
    backend: str = "ours"

    def __call__(self, scene: str, cameras: Sequence[str], **kwargs: Any) -> Any:
        sizes = {"static_size": self.static_size, "gripper_size": self.gripper_size}
        return make_calvin_env(self.backend, scene, cameras=tuple(cameras), **sizes, **kwargs)


DEFAULT_SIZES = {"rgb_static": 200, "rgb_gripper": 84}


def camera_sizes(policy: Any, static: int | None = None, gripper: int | None = None) -> tuple[int, int]:
    """(static, gripper) camera sizes: the given ones, else the policy's ``camera_sizes``, else
    CALVIN's; warns when a given size differs from the trained one.
    """
    declared = getattr(policy, "camera_sizes", None) or {}
    sizes = []
    for camera, given in (("rgb_static", static), ("rgb_gripper", gripper)):
        trained = declared.get(camera)
        if given is not None and trained is not None and tuple(trained) != (given, given):
            print(
                f"bench.run: warning: {camera} at {given}x{given}, but the policy was trained on "
                f"{trained[0]}x{trained[1]}",
                file=sys.stderr,
            )
        if given is None and trained is not None and trained[0] != trained[1]:
            raise ValueError(f"the policy's {camera} size {tuple(trained)} is not square; pass a size")
        sizes.append(
            given if given is not None else int(trained[0]) if trained is not None else DEFAULT_SIZES[camera]
        )
    return sizes[0], sizes[1]


def _derive_seed(*words: int) -> int:
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0] & 0x7FFFFFFF)


def chain_seed(seed: int, chain_index: int) -> int:
    """Env reset seed of chain ``chain_index`` (31-bit, independent of workers and order)."""
    return _derive_seed(seed, 0, chain_index)


def subtask_seed(seed: int, chain_index: int, subtask: int) -> int:
    """Policy reset seed of subtask ``subtask`` (0..4) of chain ``chain_index``."""
    return _derive_seed(seed, 1, chain_index, subtask)


@dataclass(frozen=True)
class ChainUnit:
    """One chain: its CALVIN index, symbolic start state, tasks and their instructions."""

    index: int
    state: dict
    tasks: tuple[str, ...]
    instructions: tuple[str, ...]


def chain_units(chains: Sequence[Any], instruction_for: Callable[[str], str]) -> list[ChainUnit]:
    return [
        ChainUnit(int(c.index), dict(c.state), tuple(c.tasks), tuple(map(instruction_for, c.tasks)))
        for c in chains
    ]


@dataclass(frozen=True)
class ChainPlayer:
    """The :class:`bench.engine.Player` of CALVIN chains (picklable)."""

    make_env: EnvFactory
    scene: str
    seed: int
    max_steps: int
    cameras: tuple[str, ...] = CAMERAS
    env_kwargs: dict = field(default_factory=dict)
    video_dir: str | None = None

    def open(self) -> Any:
        return self.make_env(self.scene, self.cameras, **self.env_kwargs)

    def check_action(self, action: Any, source: str) -> np.ndarray:
        return check_action(action, source=source).astype(np.float32)

    def new_record(self, job: Job) -> dict[str, Any]:
        unit = job.unit
        return {
            "chain": unit.index,
            "position": job.position,
            "env_seed": chain_seed(self.seed, unit.index),
            "state": dict(unit.state),
            "tasks": list(unit.tasks),
            "instructions": list(unit.instructions),
            "completed": 0,
            "steps": [],
            "stop_reason": "completed",
        }

    def failed(self, job: Job, reason: str, progress: list[int]) -> dict:
        """A chain whose worker died: the subtasks it started before the last one succeeded."""
        record = self.new_record(job)
        record.update(completed=max(len(progress) - 1, 0), steps=list(progress), stop_reason=reason)
        return record

    def play(self, env: Any, job: Job, rec: dict) -> UnitGenerator:
        unit = job.unit
        video_dir = self.video_dir if job.record else None
        with VideoRecorder(env, video_dir, f"chain_{unit.index:04d}", rec) as video:
            obs, _ = env_call(
                "env.reset", env.reset, seed=rec["env_seed"], options={"state": dict(unit.state)}
            )
            for j, (task, instruction) in enumerate(zip(unit.tasks, unit.instructions, strict=True)):
                env_call(f"env.begin_subtask({task!r})", env.begin_subtask, task)
                reset: dict | None = {
                    "instruction": instruction,
                    "seed": subtask_seed(self.seed, unit.index, j),
                    "info": {"suite": "calvin", "scene": self.scene, "task": task},
                }
                if hasattr(env, "target_pose"):  # the env's target: the expert's controller starts there
                    reset["info"]["target_pose"] = env_call("env.target_pose", env.target_pose).tolist()
                caption = f"{j + 1}/{len(unit.tasks)} {instruction}"
                rec["steps"].append(0)
                success = False
                while rec["steps"][j] < self.max_steps and not success:
                    video.add(caption)
                    action = yield obs, reset
                    reset = None
                    obs, _reward, _terminated, _truncated, info = env_call("env.step", env.step, action)
                    rec["steps"][j] += 1
                    success = bool(info.get("success", False))
                video.add(caption)
                if not success:
                    rec["stop_reason"] = f"timeout:{task}"
                    return
                rec["completed"] += 1


def chain_player(
    policy: Any,
    *,
    make_env: EnvFactory,
    scene: str,
    seed: int,
    max_steps: int,
    video_dir: str | Path | None = None,
) -> ChainPlayer:
    """The player for ``policy``: no cameras when it needs no images, its action mode, rendering
    when videos are recorded.
    """
    cameras = CAMERAS if getattr(policy, "needs_images", True) else ()
    env_kwargs: dict[str, Any] = {}
    if video_dir is not None:
        env_kwargs["render_mode"] = "rgb_array"
    if getattr(policy, "action_mode", "relative") != "relative":
        env_kwargs["action_mode"] = policy.action_mode
    return ChainPlayer(
        make_env, scene, seed, max_steps, cameras, env_kwargs, None if video_dir is None else str(video_dir)
    )


def evaluate_chains(
    policy: Policy,
    chains: Sequence[Any],
    *,
    scene: str = "D",
    seed: int = 0,
    workers: int = 1,
    max_steps: int = 360,
    make_env: EnvFactory | None = None,
    record: int = 0,
    video_dir: str | Path | None = None,
    policy_name: str = "policy",
    instruction_for: Callable[[str], str] | None = None,
    on_result: Callable[[dict], None] | None = None,
    worker_timeout_s: float = 600.0,
) -> list[dict]:
    """Evaluate ``policy`` on ``chains`` (objects with ``index``, ``state``, ``tasks``) without a
    run folder (the trainer's entry point); records in the order of ``chains``.

    ``workers`` envs run in processes (one: in this process); ``make_env(scene, cameras, **kwargs)``
    (picklable with workers) defaults to :class:`CalvinEnvFactory` at the policy's ``camera_sizes``;
    videos of the first ``record`` chains go to ``video_dir``; ``instruction_for`` defaults to
    ``envs.calvin.language.eval_instruction``; a worker silent for ``worker_timeout_s`` fails its chain.
    """
    if max_steps < 1:
        raise ValueError(f"need max_steps >= 1, got {max_steps}")
    if instruction_for is None:
        from envs.calvin.language import eval_instruction as instruction_for
    videos = video_dir if video_dir is not None and record > 0 else None
    player = chain_player(
        policy,
        make_env=make_env or CalvinEnvFactory(*camera_sizes(policy)),
        scene=scene,
        seed=seed,
        max_steps=max_steps,
        video_dir=videos,
    )
    units = chain_units(chains, instruction_for)
    jobs = [Job(pos, unit, record=pos < record) for pos, unit in enumerate(units)]
    return run_units(
        policy,
        jobs,
        player,
        workers=workers,
        policy_name=policy_name,
        on_result=on_result,
        worker_timeout_s=worker_timeout_s,
    )
