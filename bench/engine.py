"""The evaluation engine of every suite: units played in env workers, the policy in the driver.

A suite plays one *unit* (a CALVIN chain, a SimplerEnv episode, a real trial) with a picklable
:class:`Player`: ``open()`` builds what a worker plays in; ``new_record(job)`` is the unit's record
before it is played; ``play(env, job, record)`` is a generator that fills the record in and yields
``(obs, reset)`` for each action it needs (``reset``: ``None``, or ``{"instruction", "seed", "info"}``
for ``policy.reset`` at an instruction's first step) and receives the checked action; raising
:class:`UnitFailed` (:func:`env_call` does for a failing env) ends the unit with its reason, and a
failing policy raises it into the generator; ``check_action(action, source)`` validates an action;
``failed(job, reason, progress)`` is the record of a unit whose worker died (``progress``: the steps
after each reset seen).

Each worker (a process, or the driver itself when ``workers == 1``) owns one env; the driver owns the
policy and answers all waiting workers with one ``act_batch`` call per round, worker ``w`` in policy
slot ``w``. Records never depend on the worker count: suites reseed the env per unit and the policy
per instruction.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Protocol

import numpy as np

from policies.base import Policy, check_action

#: Time a worker process may take to start and build its env.
STARTUP_TIMEOUT_S = 300.0
#: ``stop_reason`` prefix of a unit whose worker died: such units are played again on resume.
WORKER_DIED = "error:worker died"


@dataclass(frozen=True)
class Job:
    """One unit as sent to a worker. ``position`` is its place in the run's unit list."""

    position: int
    unit: Any
    record: bool = False


@dataclass(frozen=True)
class Abort:
    """Reply to a worker instead of an action: end the unit with ``error:<message>``."""

    message: str


class UnitFailed(Exception):
    """Ends a unit with ``stop_reason`` ``reason`` (raised into a player when the policy fails,
    by :func:`env_call` when the env does).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


UnitGenerator = Generator[tuple[Any, "dict | None"], Any, None]


class Player(Protocol):
    def open(self) -> Any: ...
    def new_record(self, job: Job) -> dict: ...
    def play(self, env: Any, job: Job, record: dict) -> UnitGenerator: ...
    def check_action(self, action: Any, source: str) -> np.ndarray: ...
    def failed(self, job: Job, reason: str, progress: list[int]) -> dict: ...


class BasePlayer:
    """Defaults for a :class:`Player`: 7-D actions, and a dead worker's record counting its steps."""

    def check_action(self, action: Any, source: str) -> np.ndarray:
        return check_action(action, source=source)

    def failed(self, job: Job, reason: str, progress: list[int]) -> dict:
        return {**self.new_record(job), "steps": sum(progress), "stop_reason": reason}


def is_error(record: Mapping[str, Any], prefix: str = "error") -> bool:
    """Whether a record ended in an error (``prefix`` :data:`WORKER_DIED`: its worker died)."""
    return str(record.get("stop_reason", "")).startswith(prefix)


def error_reason(exc: BaseException, where: str) -> str:
    return f"error:{where} raised {type(exc).__name__}: {exc}"


def env_call(where: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; an exception becomes :class:`UnitFailed` naming ``where``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        raise UnitFailed(error_reason(exc, where)) from exc


def open_env(player: Player) -> Any:
    """``player.open()``; a failure is a ``RuntimeError`` that stops the run."""
    try:
        return player.open()
    except Exception as exc:
        raise RuntimeError(f"could not create the environment: {type(exc).__name__}: {exc}") from exc


def close_env(env: Any) -> None:
    with contextlib.suppress(Exception):
        env.close()


# ----------------------------------------------------------------------------- workers


def play(player: Player, env: Any, job: Job) -> Generator[tuple[Any, dict | None], Any, dict]:
    """Play ``job``: its record, with the reason of a :class:`UnitFailed` and ``wall_time_s``."""
    record = player.new_record(job)
    start = time.perf_counter()
    try:
        yield from player.play(env, job, record)
    except UnitFailed as failed:
        record["stop_reason"] = failed.reason
    record["wall_time_s"] = round(time.perf_counter() - start, 3)
    return record


def _advance(gen: Generator, reply: Any) -> tuple:
    try:
        if isinstance(reply, Abort):
            return ("act", *gen.throw(UnitFailed(f"error:{reply.message}")))
        return ("act", *gen.send(reply))
    except StopIteration as stop:
        return ("done", stop.value)


def _worker_main(conn: Any, player: Player) -> None:
    """Body of a worker process: serve units until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C
    try:
        env = player.open()
    except Exception:
        conn.send(("fatal", traceback.format_exc(limit=4)))
        return
    conn.send(("ready",))
    try:
        while True:
            message = conn.recv()
            if message[0] == "stop":
                break
            gen = play(player, env, message[1])
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
    except Exception:  # a player that cannot go on (e.g. an env it builds per unit fails): the run stops
        conn.send(("fatal", traceback.format_exc(limit=4)))
    finally:
        close_env(env)


class _LocalWorker:
    """Plays units in the driver (``workers == 1``): no isolation, no start-up cost."""

    def __init__(self, slot: int, player: Player):
        self.slot, self.player, self.job, self.inbox = slot, player, None, None
        self.env = open_env(player)

    def start(self, job: Job) -> None:
        self.job = job
        self.gen = play(self.player, self.env, job)
        self.inbox = _advance(self.gen, None)

    def reply(self, answer: Any) -> None:
        self.inbox = _advance(self.gen, answer)

    def pull(self, timeout_s: float) -> None:
        """Nothing to fetch: ``start`` and ``reply`` run the unit up to its next message."""

    def close(self) -> None:
        close_env(self.env)


class _ProcessWorker:
    """A worker process talking over a pipe; detects death and silence (``timeout_s``)."""

    def __init__(self, slot: int, ctx: Any, player: Player):
        self.slot, self.ctx, self.player, self.job, self.inbox = slot, ctx, player, None, None
        self._spawn()

    def _spawn(self) -> None:
        self.conn, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker_main, args=(child, self.player), daemon=True)
        self.proc.start()
        child.close()
        self.sent_at, self.ready = time.monotonic(), False

    def _send(self, message: tuple) -> None:
        self.sent_at = time.monotonic()
        with contextlib.suppress(BrokenPipeError, OSError):  # a death is noticed by pull()
            self.conn.send(message)

    def start(self, job: Job) -> None:
        self.job = job
        self._send(("unit", job))

    def reply(self, answer: Any) -> None:
        self._send(("reply", answer))

    def pull(self, timeout_s: float) -> None:
        """Fill ``inbox`` with the worker's message, or ``died`` when it died or stayed silent
        ``timeout_s`` after the last message sent (building its env may take :data:`STARTUP_TIMEOUT_S`)."""
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
            self.inbox = ("died", f"sent nothing for {limit:.0f} s and was killed")
            return
        self.proc.join(1)
        self.inbox = ("died", f"its process exited with code {self.proc.exitcode}")

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


# ----------------------------------------------------------------------------- the policy


def policy_round(
    policy: Policy, batch: list[tuple[int, Any, dict | None]], policy_name: str, player: Player
) -> list:
    """Answer one round of ``(slot, obs, reset)``: reset the policy where an instruction starts,
    then one ``act_batch`` for all, each action checked; failures become :class:`Abort` replies. A failing
    batch is retried one observation at a time, so a failure does not depend on which units share it.
    """
    name = f"policy {policy_name!r}"
    replies: list[Any] = [None] * len(batch)
    active = []
    for i, (slot, _, reset) in enumerate(batch):
        if reset is not None:
            try:
                policy.reset(reset["instruction"], slot=slot, seed=reset["seed"], info=reset["info"])
            except Exception as exc:
                replies[i] = Abort(f"{name} reset raised {type(exc).__name__}: {exc}")
                continue
        active.append(i)
    groups = [active] if active else []
    while groups:
        group = groups.pop()
        try:
            actions = policy.act_batch([batch[i][1] for i in group], [batch[i][0] for i in group])
            if len(actions) != len(group):
                raise ValueError(f"act_batch returned {len(actions)} actions for {len(group)} observations")
        except Exception as exc:
            if len(group) > 1:
                groups.extend([i] for i in reversed(group))
            else:
                replies[group[0]] = Abort(f"{name} raised {type(exc).__name__}: {exc}")
            continue
        for i, action in zip(group, actions, strict=True):
            try:
                replies[i] = player.check_action(action, name)
            except (TypeError, ValueError) as exc:
                replies[i] = Abort(str(exc))
    return replies


def play_unit(policy: Policy, player: Player, env: Any, job: Job, policy_name: str = "policy") -> dict:
    """Play one unit in this process with ``policy`` in slot 0; returns its record."""
    gen = play(player, env, job)
    out = _advance(gen, None)
    while out[0] == "act":
        (answer,) = policy_round(policy, [(0, out[1], out[2])], policy_name, player)
        out = _advance(gen, answer)
    return out[1]


# ----------------------------------------------------------------------------- the engine


def _context() -> Any:
    methods = mp.get_all_start_methods()
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


def run_units(
    policy: Policy,
    jobs: Sequence[Job],
    player: Player,
    *,
    workers: int = 1,
    policy_name: str = "policy",
    on_result: Callable[[dict], None] | None = None,
    worker_timeout_s: float = 600.0,
) -> list[dict]:
    """Play ``jobs`` with ``policy`` in the driver and ``workers`` envs; records in job order.

    One worker plays in the driver (no start-up cost, no crash protection); more run one process each.
    A worker that dies or is silent for ``worker_timeout_s`` is replaced and its unit's record comes from
    ``player.failed`` (``stop_reason`` :data:`WORKER_DIED`). ``on_result`` gets each record as its unit
    finishes. An env that cannot be built raises ``RuntimeError``.
    """
    if workers < 1:
        raise ValueError(f"need workers >= 1, got {workers}")
    queue = deque(jobs)
    if not queue:
        return []
    n_workers = min(workers, len(queue))
    results: dict[int, dict] = {}
    pool: list[Any] = []

    def finish(worker: Any, record: dict) -> None:
        results[worker.job.position] = record
        worker.job = None
        if on_result is not None:
            on_result(record)

    try:
        if n_workers == 1:
            pool.append(_LocalWorker(0, player))
        else:
            ctx = _context()
            pool.extend(_ProcessWorker(w, ctx, player) for w in range(n_workers))
        while True:
            for worker in pool:
                if worker.job is None and queue:
                    worker.progress = []  # steps after each reset, as seen from here
                    worker.stepping = False
                    worker.start(queue.popleft())
            busy = [w for w in pool if w.job is not None]
            if not busy:
                break
            # A round waits for every stepping worker (full batches) but not for workers that are
            # starting or resetting for a new unit: they join the round after they are ready.
            while True:
                for worker in busy:
                    worker.pull(worker_timeout_s)
                waiting = [w for w in busy if w.inbox is None]
                if not waiting or (len(waiting) < len(busy) and not any(w.stepping for w in waiting)):
                    break
                wait([h for w in waiting for h in w.handles()], timeout=min(worker_timeout_s, 5.0))
            batch, askers = [], []
            for worker in (w for w in busy if w.inbox is not None):
                message, worker.inbox = worker.inbox, None
                if message[0] == "act":
                    if message[2] is not None:
                        worker.progress.append(0)
                    batch.append((worker.slot, message[1], message[2]))
                    askers.append(worker)
                elif message[0] == "done":
                    finish(worker, message[1])
                elif message[0] == "fatal":
                    raise RuntimeError(f"env worker could not create the environment:\n{message[1]}")
                else:  # died
                    record = player.failed(worker.job, f"{WORKER_DIED}: {message[1]}", worker.progress)
                    finish(worker, record)
                    worker.restart()
            for worker, answer in zip(askers, policy_round(policy, batch, policy_name, player), strict=True):
                worker.stepping = not isinstance(answer, Abort)
                if worker.stepping and worker.progress:
                    worker.progress[-1] += 1
                worker.reply(answer)
    finally:
        for worker in pool:
            worker.close()
    return [results[pos] for pos in sorted(results)]
