"""CALVIN long-horizon evaluation engine: chains of 5 instructions, batched over env workers.

Protocol per chain (see ``shared/reference/calvin.md``): reset the env once with the chain's symbolic
start state and a seed derived from ``(seed, chain index)``; then for each of the 5 tasks call
``env.begin_subtask(task)``, reset the policy with the task's evaluation instruction and step up to
``max_steps`` times until the oracle reports ``info["success"]``. The env is not reset between
subtasks; the chain stops at its first failure.

The policy's ``reset`` receives ``info={"suite": "calvin", "scene": ..., "task": ...}``: scripted
experts may read the task name from it; learned policies must only use the instruction.

Parallelism: each worker (a process, or the main process itself when ``workers == 1``) owns one env
and runs :func:`run_chain`; the main process owns the policy and answers all waiting workers with
one ``policy.act_batch`` call per round. Worker ``w`` always uses policy slot ``w``. A chain's result
depends only on ``(seed, chain index)``: the env is reseeded per chain and the policy per subtask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

import numpy as np

from bench.video import VideoRecorder
from policies.base import Policy, check_action

CAMERAS = ("static", "gripper")
#: Time a worker process may take to start and build its env.
STARTUP_TIMEOUT_S = 300.0
#: ``make_env(scene, cameras, **kwargs) -> env``; kwargs may hold ``render_mode`` and ``action_mode``.
EnvFactory = Callable[..., Any]


@dataclass(frozen=True)
class CalvinEnvFactory:
    """Default, picklable env factory: builds ``envs.calvin.env.CalvinEnv``."""

    static_size: int = 200
    gripper_size: int = 84

    def __call__(self, scene: str, cameras: Sequence[str], **kwargs: Any) -> Any:
        from envs.calvin.env import CalvinEnv

        sizes = {"static_size": self.static_size, "gripper_size": self.gripper_size}
        return CalvinEnv(scene=scene, cameras=tuple(cameras), **sizes, **kwargs)


def _derive_seed(*words: int) -> int:
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0] & 0x7FFFFFFF)


def chain_seed(seed: int, chain_index: int) -> int:
    """Env reset seed of chain ``chain_index`` (31-bit, independent of workers and order)."""
    return _derive_seed(seed, 0, chain_index)


def subtask_seed(seed: int, chain_index: int, subtask: int) -> int:
    """Policy reset seed of subtask ``subtask`` (0..4) of chain ``chain_index``."""
    return _derive_seed(seed, 1, chain_index, subtask)


@dataclass(frozen=True)
class ChainJob:
    """One chain as sent to a worker. ``position`` is its place in the run's chain list."""

    position: int
    index: int
    state: dict
    tasks: tuple[str, ...]
    instructions: tuple[str, ...]
    record: bool = False


@dataclass(frozen=True)
class Abort:
    """Reply to a worker instead of an action: end the chain with ``error:<message>``."""

    message: str


@dataclass(frozen=True)
class RunConfig:
    """Everything a worker needs besides its env factory (picklable)."""

    scene: str
    seed: int
    max_steps: int
    video_dir: str | None = None


def _error(exc: BaseException, where: str) -> str:
    return f"error:{where} raised {type(exc).__name__}: {exc}"


def run_chain(env: Any, job: ChainJob, cfg: RunConfig) -> Generator[tuple, Any, dict]:
    """Run one chain as a generator.

    Yields ``(obs, reset)`` whenever an action is needed, where ``reset`` is ``None`` or, at the
    first step of a subtask, ``{"instruction", "seed", "info"}`` for ``policy.reset``. Receives the
    validated action or an :class:`Abort`. Returns the chain's episode record.
    """
    rec = _new_record(job, cfg)
    start = time.perf_counter()
    video = VideoRecorder(env, Path(cfg.video_dir), job.index) if job.record and cfg.video_dir else None
    try:
        obs, _ = env.reset(seed=rec["env_seed"], options={"state": dict(job.state)})
    except Exception as exc:
        rec["stop_reason"] = _error(exc, "env.reset")
        return rec
    try:
        for j, (task, instruction) in enumerate(zip(job.tasks, job.instructions, strict=True)):
            try:
                env.begin_subtask(task)
            except Exception as exc:
                rec["stop_reason"] = _error(exc, f"env.begin_subtask({task!r})")
                return rec
            reset: dict | None = {
                "instruction": instruction,
                "seed": subtask_seed(cfg.seed, job.index, j),
                "info": {"suite": "calvin", "scene": cfg.scene, "task": task},
            }
            caption = f"{j + 1}/{len(job.tasks)} {instruction}"
            rec["steps"].append(0)
            success = False
            while rec["steps"][j] < cfg.max_steps and not success:
                if video:
                    video.add(caption)
                reply = yield obs, reset
                reset = None
                if isinstance(reply, Abort):
                    rec["stop_reason"] = f"error:{reply.message}"
                    return rec
                try:
                    obs, _reward, _terminated, _truncated, info = env.step(reply)
                except Exception as exc:
                    rec["stop_reason"] = _error(exc, "env.step")
                    return rec
                rec["steps"][j] += 1
                success = bool(info.get("success", False))
            if video:
                video.add(caption)
            if not success:
                rec["stop_reason"] = f"timeout:{task}"
                return rec
            rec["completed"] += 1
        return rec
    finally:
        rec["wall_time_s"] = round(time.perf_counter() - start, 3)
        if video:
            rec.update(video.close())


# ----------------------------------------------------------------------------- workers


def _advance(gen: Generator, reply: Any) -> tuple:
    try:
        return ("act", *gen.send(reply))
    except StopIteration as stop:
        return ("done", stop.value)


def _worker_main(conn: Any, make_env: EnvFactory, cameras: tuple, env_kwargs: dict, cfg: RunConfig) -> None:
    """Body of a worker process: serve chains until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C
    try:
        env = make_env(cfg.scene, cameras, **env_kwargs)
    except Exception:
        conn.send(("fatal", traceback.format_exc(limit=4)))
        return
    conn.send(("ready",))
    try:
        while True:
            message = conn.recv()
            if message[0] == "stop":
                break
            gen = run_chain(env, message[1], cfg)
            out = _advance(gen, None)
            while out[0] == "act":
                conn.send(out)
                reply = conn.recv()
                if reply[0] == "stop":
                    return
                out = _advance(gen, reply[1])
            conn.send(out)
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        env.close()


class _LocalWorker:
    """Runs chains in the main process (``workers == 1``): no isolation, no start-up cost."""

    def __init__(self, slot: int, make_env: EnvFactory, cameras: tuple, env_kwargs: dict, cfg: RunConfig):
        self.slot, self.cfg, self.job, self.inbox = slot, cfg, None, None
        try:
            self.env = make_env(cfg.scene, cameras, **env_kwargs)
        except Exception as exc:
            raise RuntimeError(f"could not create the environment: {type(exc).__name__}: {exc}") from exc

    def start(self, job: ChainJob) -> None:
        self.job = job
        self.gen = run_chain(self.env, job, self.cfg)
        self.inbox = _advance(self.gen, None)

    def reply(self, answer: Any) -> None:
        self.inbox = _advance(self.gen, answer)

    def pull(self, timeout_s: float) -> None:
        """Nothing to fetch: ``start`` and ``reply`` run the chain up to its next message."""

    def close(self) -> None:
        self.env.close()


class _ProcessWorker:
    """A worker process talking over a pipe; detects death and silence (``timeout_s``)."""

    def __init__(self, slot: int, ctx: Any, args: tuple):
        self.slot, self.ctx, self.args, self.job, self.inbox = slot, ctx, args, None, None
        self._spawn()

    def _spawn(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker_main, args=(child, *self.args), daemon=True)
        self.proc.start()
        child.close()
        self.sent_at, self.ready = time.monotonic(), False

    def _send(self, message: tuple) -> None:
        self.sent_at = time.monotonic()
        with contextlib.suppress(BrokenPipeError, OSError):  # a death is noticed by pull()
            self.conn.send(message)

    def start(self, job: ChainJob) -> None:
        self.job = job
        self._send(("chain", job))

    def reply(self, answer: Any) -> None:
        self._send(("reply", answer))

    def pull(self, timeout_s: float) -> None:
        """Fill ``inbox`` with the worker's message, or a ``died`` note if it died or went silent.

        ``timeout_s`` counts from the last message sent once the env is built (``ready``); building
        it may take up to :data:`STARTUP_TIMEOUT_S`.
        """
        while self.inbox is None:
            try:
                if not (self.conn.poll() or (not self.proc.is_alive() and self.conn.poll())):
                    break
                message = self.conn.recv()
            except (EOFError, OSError):
                break  # the pipe closed: the process is gone
            if message[0] == "ready":
                self.ready, self.sent_at = True, time.monotonic()
            else:
                self.inbox = message
        if self.inbox is not None:
            return
        limit = timeout_s if self.ready else max(timeout_s, STARTUP_TIMEOUT_S)
        if self.proc.is_alive():
            if time.monotonic() - self.sent_at <= limit:
                return
            self.proc.kill()
            self.proc.join(5)
            self.inbox = ("died", f"worker sent nothing for {limit:.0f} s and was killed")
            return
        self.proc.join(1)
        self.inbox = ("died", f"worker process died (exit code {self.proc.exitcode})")

    def handles(self) -> list:
        return [self.conn, self.proc.sentinel]

    def restart(self) -> None:
        self.close()
        self._spawn()

    def close(self) -> None:
        if self.proc.is_alive():
            self._send(("stop",))
            self.proc.join(2)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2)
        self.conn.close()


# ----------------------------------------------------------------------------- the engine


def _policy_round(policy: Policy, batch: list[tuple[Any, Any, dict | None]], policy_name: str) -> list:
    """Answer one round of ``(worker, obs, reset)``: reset the policy where a subtask starts, then
    one ``act_batch`` for all and validate each action. Failures become :class:`Abort` replies.

    If the batched call raises, each observation is retried alone to find the failing chain(s), so
    that a failure does not depend on which chains share a batch.
    """
    name = f"policy {policy_name!r}"
    replies: list[Any] = [None] * len(batch)
    active = []
    for i, (worker, _, reset) in enumerate(batch):
        if reset is not None:
            try:
                policy.reset(reset["instruction"], slot=worker.slot, seed=reset["seed"], info=reset["info"])
            except Exception as exc:
                replies[i] = Abort(f"{name} reset raised {type(exc).__name__}: {exc}")
                continue
        active.append(i)
    groups = [active] if active else []
    while groups:
        group = groups.pop()
        try:
            actions = np.asarray(
                policy.act_batch([batch[i][1] for i in group], [batch[i][0].slot for i in group])
            )
            if actions.ndim < 1 or actions.shape[0] != len(group):
                raise ValueError(f"act_batch returned shape {actions.shape} for {len(group)} observations")
        except Exception as exc:
            if len(group) > 1:
                groups.extend([i] for i in reversed(group))
            else:
                replies[group[0]] = Abort(f"{name} raised {type(exc).__name__}: {exc}")
            continue
        for i, action in zip(group, actions, strict=True):
            try:
                replies[i] = check_action(action, source=name).astype(np.float32)
            except ValueError as exc:
                replies[i] = Abort(str(exc))
    return replies


def _context() -> Any:
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


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
    """Evaluate ``policy`` on ``chains`` (objects with ``index``, ``state``, ``tasks``).

    Args:
        workers: Number of envs run in parallel, each in its own process; with one, the env runs
            in the main process (no start-up cost, but no protection against crashes).
        make_env: ``make_env(scene, cameras, **kwargs) -> env``, picklable when workers run in
            processes; kwargs hold ``render_mode="rgb_array"`` when recording and ``action_mode``
            when the policy's is not ``"relative"``. Defaults to :class:`CalvinEnvFactory`.
        record: Record videos of the first ``record`` chains of the list into ``video_dir``.
        instruction_for: Task name -> instruction; defaults to ``envs.calvin.language.eval_instruction``.
        on_result: Called in the main process with each episode record as its chain finishes.
        worker_timeout_s: A worker silent for this long is killed and its chain fails.

    Returns:
        One episode record per chain, in the order of ``chains``.
    """
    if workers < 1 or max_steps < 1:
        raise ValueError(f"need workers >= 1 and max_steps >= 1, got {workers} and {max_steps}")
    if instruction_for is None:
        from envs.calvin.language import eval_instruction as instruction_for
    make_env = make_env or CalvinEnvFactory()
    cameras = CAMERAS if getattr(policy, "needs_images", True) else ()
    env_kwargs: dict[str, Any] = {}
    if record > 0:
        env_kwargs["render_mode"] = "rgb_array"
    if getattr(policy, "action_mode", "relative") != "relative":
        env_kwargs["action_mode"] = policy.action_mode
    cfg = RunConfig(scene, seed, max_steps, str(video_dir) if video_dir is not None and record > 0 else None)
    jobs = deque(
        ChainJob(pos, int(c.index), dict(c.state), tuple(c.tasks), tuple(map(instruction_for, c.tasks)))
        for pos, c in enumerate(chains)
    )
    for pos in range(min(record, len(jobs))):
        jobs[pos] = dataclasses.replace(jobs[pos], record=True)
    if not jobs:
        return []
    n_workers = min(workers, len(jobs))
    results: dict[int, dict] = {}
    pool: list[Any] = []

    def finish(worker: Any, record_: dict) -> None:
        results[record_["position"]] = record_
        worker.job = None
        if on_result is not None:
            on_result(record_)

    try:
        if n_workers == 1:
            pool.append(_LocalWorker(0, make_env, cameras, env_kwargs, cfg))
        else:
            ctx = _context()
            pool.extend(
                _ProcessWorker(w, ctx, (make_env, cameras, env_kwargs, cfg)) for w in range(n_workers)
            )
        while True:
            for worker in pool:
                if worker.job is None and jobs:
                    worker.progress = []  # steps per started subtask, as seen from here
                    worker.stepping = False
                    worker.start(jobs.popleft())
            busy = [w for w in pool if w.job is not None]
            if not busy:
                break
            # A round waits for every stepping worker (full batches) but not for workers that are
            # starting or resetting for a new chain: they join the round after they are ready.
            while True:
                for worker in busy:
                    worker.pull(worker_timeout_s)
                waiting = [w for w in busy if w.inbox is None]
                if not waiting or (len(waiting) < len(busy) and not any(w.stepping for w in waiting)):
                    break
                wait([h for w in waiting for h in w.handles()], timeout=min(worker_timeout_s, 5.0))
            batch = []
            for worker in (w for w in busy if w.inbox is not None):
                message, worker.inbox = worker.inbox, None
                if message[0] == "act":
                    if message[2] is not None:
                        worker.progress.append(0)
                    batch.append((worker, message[1], message[2]))
                elif message[0] == "done":
                    finish(worker, message[1])
                elif message[0] == "fatal":
                    raise RuntimeError(f"env worker could not create the environment:\n{message[1]}")
                else:  # died: the subtasks it started before the last one succeeded
                    record_ = _new_record(worker.job, cfg)
                    record_.update(
                        completed=max(len(worker.progress) - 1, 0),
                        steps=worker.progress,
                        stop_reason=f"error:{message[1]}",
                    )
                    finish(worker, record_)
                    worker.restart()
            for (worker, _, _), answer in zip(batch, _policy_round(policy, batch, policy_name), strict=True):
                worker.stepping = not isinstance(answer, Abort)
                if worker.stepping:
                    worker.progress[-1] += 1
                worker.reply(answer)
    finally:
        for worker in pool:
            worker.close()
    return [results[pos] for pos in sorted(results)]


def _new_record(job: ChainJob, cfg: RunConfig) -> dict[str, Any]:
    return {
        "chain": job.index,
        "position": job.position,
        "env_seed": chain_seed(cfg.seed, job.index),
        "state": dict(job.state),
        "tasks": list(job.tasks),
        "instructions": list(job.instructions),
        "completed": 0,
        "steps": [],
        "stop_reason": "completed",
    }
