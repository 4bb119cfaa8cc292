"""Real-world protocol: an operator-in-the-loop evaluation on your own robot.

    python -m bench.run --suite real --env mypkg.robot:make_env --tasks tasks.json --policy SPEC \\
        --trials 10 --out runs/real/SPEC

``--env`` names a factory that returns a Gymnasium env for the robot (the *adapter*): its
observations are what the policy reads (e.g. ``rgb_static``, ``robot_obs``) and its actions are
the policy's 7-D actions. ``--tasks`` is a JSON list of ``{"task": name, "instruction": text}``.
For every task and trial the harness asks the operator to reset the scene (showing the
instruction), calls ``env.reset(seed=, options={"task", "instruction"})`` (adapters may ignore the
options), runs the policy until the env ends the episode or ``--max-steps``, and asks the operator
whether the task succeeded. Lines go to ``OUT/episodes.jsonl`` as trials finish (``--resume`` skips
the finished ones after an interruption) and ``OUT/summary.json`` holds per-task successes,
trials, rates and Wilson 95 % intervals, like the simulated suites.

The operator is ``console`` (prompts on the terminal) or ``package.module:Class`` with the methods
of :class:`Operator`; :class:`OracleOperator` stands in for a person over the simulator in tests.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.stats import wilson_interval
from policies.base import Policy, check_action


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


def _load(spec: str, what: str) -> Any:
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"{what} must look like package.module:name, got {spec!r}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{what} {spec!r} cannot be loaded: {exc}") from None


def read_tasks(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    try:
        tasks = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the task list ({exc})") from None
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
    done: set[tuple[str, int]] | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run every (task, trial) not in ``done``; returns the new trial records."""
    records = []
    for t in tasks:
        task, instruction = t["task"], t["instruction"]
        for trial in range(trials):
            if done and (task, trial) in done:
                continue
            operator.prepare(task, instruction, trial)
            trial_seed = int(
                np.random.SeedSequence([seed, trial, *task.encode()]).generate_state(1)[0] & 0x7FFFFFFF
            )
            obs, info = env.reset(seed=trial_seed, options={"task": task, "instruction": instruction})
            policy.reset(instruction, slot=0, seed=trial_seed, info={"suite": "real", "task": task})
            steps, reason, start = 0, "max_steps", time.time()
            try:
                for steps in range(1, max_steps + 1):  # noqa: B007 - steps is reported
                    action = check_action(policy.act(obs, slot=0), source="policy")
                    obs, _, terminated, truncated, info = env.step(action)
                    if terminated or truncated:
                        reason = "terminated" if terminated else "truncated"
                        break
            except Exception as exc:  # a crashing policy fails the trial; the session goes on
                reason = f"error:{type(exc).__name__}: {exc}"
            success = False if reason.startswith("error:") else operator.judge(task, instruction, trial, info)
            rec = {
                "task": task,
                "instruction": instruction,
                "trial": trial,
                "success": bool(success),
                "steps": steps,
                "stop_reason": reason,
                "seconds": round(time.time() - start, 2),
            }
            records.append(rec)
            if on_result:
                on_result(rec)
    return records


def summarize_real(records: Sequence[dict], policy: str) -> dict[str, Any]:
    per_task: dict[str, dict[str, Any]] = {}
    for r in records:
        row = per_task.setdefault(r["task"], {"successes": 0, "trials": 0})
        row["trials"] += 1
        row["successes"] += int(r["success"])
    for row in per_task.values():
        row["rate"] = row["successes"] / row["trials"]
        row["ci_low"], row["ci_high"] = wilson_interval(row["successes"], row["trials"])
    k, n = sum(r["success"] for r in records), len(records)
    low, high = wilson_interval(k, n)
    return {
        "suite": "real",
        "policy": policy,
        "n_trials": n,
        "success_rate": k / n if n else 0.0,
        "success_rate_ci": [low, high],
        "per_task": per_task,
    }


def main(argv: Sequence[str] | None = None) -> int:
    from policies.registry import make_policy

    parser = argparse.ArgumentParser(
        prog="python -m bench.run --suite real", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--suite", choices=("real",), default="real")
    parser.add_argument("--policy", required=True, help="policy spec, as for the simulated suites")
    parser.add_argument(
        "--env", required=True, help="package.module:factory returning the robot's Gymnasium env"
    )
    parser.add_argument("--tasks", required=True, help="JSON list of {task, instruction}")
    parser.add_argument("--trials", type=int, default=10, help="trials per task")
    parser.add_argument("--max-steps", type=int, default=360, help="step budget per trial")
    parser.add_argument(
        "--operator", default="console", help="console, or package.module:Class (an Operator)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--resume", action="store_true", help="continue a session in --out, skipping finished trials"
    )
    args = parser.parse_args(argv)
    try:
        if args.trials < 1 or args.max_steps < 1:
            raise ValueError("--trials and --max-steps must be >= 1")
        tasks = read_tasks(args.tasks)
        env = _load(args.env, "--env")()
        operator = ConsoleOperator() if args.operator == "console" else _load(args.operator, "--operator")()
        policy = make_policy(args.policy)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        episodes = out / "episodes.jsonl"
        if episodes.exists() and not args.resume:
            raise ValueError(
                f"{episodes} exists: pass --resume to continue that session, or pick another --out"
            )
    except (ValueError, OSError) as exc:
        print(f"bench.run: error: {exc}", file=sys.stderr)
        return 2
    earlier = (
        [json.loads(line) for line in episodes.read_text().splitlines() if line.strip()]
        if episodes.exists()
        else []
    )
    (out / "config.json").write_text(json.dumps(vars(args), indent=2))
    with open(episodes, "a") as f:

        def write(rec: dict) -> None:
            f.write(json.dumps(rec) + "\n")
            f.flush()

        try:
            new = evaluate_real(
                env,
                policy,
                tasks,
                operator,
                trials=args.trials,
                max_steps=args.max_steps,
                seed=args.seed,
                done={(r["task"], r["trial"]) for r in earlier},
                on_result=write,
            )
        except KeyboardInterrupt:
            print(f"\nbench.run: interrupted; continue with --resume --out {out}", file=sys.stderr)
            return 130
        finally:
            policy.close()
    summary = summarize_real(earlier + new, args.policy)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"success {summary['success_rate']:.3f} over {summary['n_trials']} trials -> {out / 'summary.json'}"
    )
    return 0


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
