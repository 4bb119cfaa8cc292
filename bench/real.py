"""Real-world protocol: an operator-in-the-loop evaluation on your own robot.

    python -m bench.run --suite real --env mypkg.robot:make_env --tasks tasks.json --policy SPEC \\
        --trials 10 --out runs/real/SPEC

``--env`` names a factory that returns a Gymnasium env for the robot (the *adapter*): its
observations are what the policy reads (e.g. ``rgb_static``, ``robot_obs``) and its actions are
the policy's 7-D actions. ``--tasks`` is a JSON list of ``{"task": name, "instruction": text}``.
For every task and trial the harness asks the operator to reset the scene (showing the
instruction), calls ``env.reset(seed=, options={"task", "instruction"})`` (adapters may ignore the
options), runs the policy until the env ends the episode or ``--max-steps``, and asks the operator
whether the task succeeded. Lines go to ``OUT/episodes.jsonl`` as trials finish (``--resume OUT``
plays the others after an interruption) and ``OUT/summary.json`` holds per-task successes,
trials, rates and Wilson 95 % intervals, like the simulated suites. The suite is
:mod:`bench.suites.real`.

The operator is ``console`` (prompts on the terminal) or ``package.module:Class`` with the methods
of :class:`Operator`; :class:`OracleOperator` stands in for a person over the simulator in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench import rundir
from bench.engine import BasePlayer, Job, UnitGenerator, env_call
from bench.stats import per_task_table, wilson_interval
from policies.base import Policy


class Operator:
    """The person at the robot. Override :meth:`prepare` and :meth:`judge` (both may block)."""

    def prepare(self, task: str, instruction: str, trial: int) -> None:
        """Reset the scene for this trial; return when ready."""

    def judge(self, task: str, instruction: str, trial: int, info: dict[str, Any]) -> bool:
        """Did the robot do it? ``info`` is the env's last step info."""
        raise NotImplementedError


class ConsoleOperator(Operator):
    """Prompts on the terminal."""

    def __init__(self, ask: Callable[[str], str] = input) -> None:
        self.ask = ask

    def prepare(self, task: str, instruction: str, trial: int) -> None:
        self.ask(f"\n[{task} trial {trial + 1}] reset the scene for: '{instruction}', then press Enter ")

    def judge(self, task: str, instruction: str, trial: int, info: dict[str, Any]) -> bool:
        while True:
            answer = self.ask(f"did the robot '{instruction}'? [y/n] ").strip().lower()
            if answer in ("y", "yes", "n", "no"):
                return answer.startswith("y")


class OracleOperator(Operator):
    """A scripted operator for the simulator standing in for a robot: judges by ``info['success']``."""

    def __init__(self) -> None:
        self.prepared: list[tuple[str, int]] = []

    def prepare(self, task: str, instruction: str, trial: int) -> None:
        self.prepared.append((task, trial))

    def judge(self, task: str, instruction: str, trial: int, info: dict[str, Any]) -> bool:
        return bool(info.get("success", False))


def read_tasks(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    try:
        tasks = rundir.read_json(path)
    except rundir.RunFolderError as exc:
        raise ValueError(f"cannot read the task list: {exc}") from None
    if not isinstance(tasks, list) or not tasks:
        raise ValueError(f"{path}: expected a non-empty JSON list of {{'task', 'instruction'}} objects")
    for i, t in enumerate(tasks):
        if (
            not isinstance(t, dict)
            or not isinstance(t.get("task"), str)
            or not isinstance(t.get("instruction"), str)
        ):
            raise ValueError(f"{path}: entry {i} needs string keys 'task' and 'instruction', got {t!r}")
    return tasks


def evaluate_real(
    env: Any,
    policy: Policy,
    tasks: Sequence[dict[str, str]],
    operator: Operator,
    *,
    trials: int,
    max_steps: int,
    seed: int,
) -> list[dict]:
    """Every (task, trial) of a session in this process (``--suite real`` does the same with a run folder)."""
    from bench.engine import Job, play_unit

    player = TrialPlayer(lambda: env, lambda: operator, max_steps, seed)
    session = player.open()
    return [
        play_unit(policy, player, session, Job(p, unit)) for p, unit in enumerate(trial_units(tasks, trials))
    ]


@dataclass(frozen=True)
class TrialUnit:
    task: str
    instruction: str
    trial: int


def trial_units(tasks: Sequence[dict[str, str]], trials: int) -> list[TrialUnit]:
    return [TrialUnit(t["task"], t["instruction"], trial) for t in tasks for trial in range(trials)]


def trial_seed(seed: int, unit: TrialUnit) -> int:
    return int(
        np.random.SeedSequence([seed, unit.trial, *unit.task.encode()]).generate_state(1)[0] & 0x7FFFFFFF
    )


@dataclass(frozen=True)
class TrialPlayer(BasePlayer):
    """The :class:`bench.engine.Player` of real trials: the operator prepares the scene and judges."""

    make_env: Callable[[], Any]
    make_operator: Callable[[], Operator]
    max_steps: int
    seed: int

    def open(self) -> tuple[Any, Operator]:
        return self.make_env(), self.make_operator()

    def new_record(self, job: Job) -> dict:
        unit = job.unit
        return {
            "task": unit.task,
            "instruction": unit.instruction,
            "trial": unit.trial,
            "success": False,
            "steps": 0,
            "stop_reason": "max_steps",
        }

    def play(self, session: tuple[Any, Operator], job: Job, rec: dict) -> UnitGenerator:
        env, operator = session
        unit = job.unit
        seed = trial_seed(self.seed, unit)
        env_call("operator.prepare", operator.prepare, unit.task, unit.instruction, unit.trial)
        options = {"task": unit.task, "instruction": unit.instruction}
        obs, info = env_call("env.reset", env.reset, seed=seed, options=options)
        reset: dict | None = {
            "instruction": unit.instruction,
            "seed": seed,
            "info": {"suite": "real", "task": unit.task},
        }
        while rec["steps"] < self.max_steps:
            action = yield obs, reset
            reset = None
            obs, _, terminated, truncated, info = env_call("env.step", env.step, action)
            rec["steps"] += 1
            if terminated or truncated:
                rec["stop_reason"] = "terminated" if terminated else "truncated"
                break
        judged = env_call("operator.judge", operator.judge, unit.task, unit.instruction, unit.trial, info)
        rec["success"] = bool(judged)


def summarize_real(records: Sequence[dict]) -> dict[str, Any]:
    """Per-task successes, trials, rates and Wilson 95 % intervals, and the overall rate."""
    k, n = sum(bool(r["success"]) for r in records), len(records)
    return {
        "n_trials": n,
        "success_rate": k / n if n else 0.0,
        "success_rate_ci": list(wilson_interval(k, n)),
        "per_task": per_task_table((r["task"], r["success"]) for r in records),
    }


# --------------------------------------------------------------------------- the simulator as a robot


class SimRobot:
    """The CALVIN-style simulator behind the adapter interface, for tests and dry runs of the protocol.

    ``reset(options={"task": ...})`` starts from the first official chain whose first task it is and
    judges that task, so ``info["success"]`` tells the :class:`OracleOperator` the outcome.
    """

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
