"""Ray backend of every suite: ``python -m bench.run ... --ray [ADDRESS]``.

``--ray`` alone starts a local Ray instance (or uses the one this process joined); ``--ray ADDRESS``
(``auto``, ``ray://host:10001``, ``host:6379``) joins that cluster; by explicit address Ray (2.60) needs
``RAY_AUTH_MODE=token`` to pick up its token (``~/.ray/auth_token`` or ``RAY_AUTH_TOKEN``).

Design: one actor per cluster CPU (at most one per unit), each with its own env **and its own policy**
built from the ``--policy`` spec, playing whole units as ``--workers 1`` does, so records equal a
``--workers 1`` run. Batching across envs in the driver (what ``--workers N`` does) would need a Ray
round trip with the camera images for every env step, which would cost more than the simulator and
tie every node to the driver's pace; here an actor talks to the driver once per policy reset. The
price: every actor loads the policy, which must be buildable from its spec on the nodes.

Records stream to ``on_result`` as units finish (resume and fail-fast work as locally). An actor that
dies fails its unit with ``error:worker died: Ray actor died: ...`` (played again on resume) and is
replaced; the instructions it finished before count (actors report at each reset), the steps after
the last reset are recorded as 0. An actor that cannot build its env or policy stops the run. Hung
actors are not detected. Videos are written on the actor's node and sent back with the record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import socket
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.engine import WORKER_DIED, Abort, Job, Player, _advance, close_env, open_env, play, policy_round
from policies.base import Policy

#: ``--ray`` without a value: start (or reuse) a local Ray instance.
LOCAL = "local"
INSTALL_HINT = 'pip install "ray>=2.40,<3"  (or: pip install -e ".[ray]")'


def import_ray() -> Any:
    """The ``ray`` module, or a RuntimeError that says how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(
            f"--ray needs the ray package, which is not installed ({exc}); {INSTALL_HINT}"
        ) from None
    return ray


def check_args(workers: int) -> None:
    """ValueError when ``--ray`` cannot run: ``--workers`` > 1, or ray is not installed."""
    if workers > 1:
        raise ValueError(
            f"--ray runs one Ray actor per CPU of the cluster; --workers {workers} is for the local "
            "backend: drop one of the two"
        )
    try:
        import_ray()
    except RuntimeError as exc:
        raise ValueError(str(exc)) from None


class UnitActor:
    """Body of a Ray actor: one env and one policy; plays units as ``--workers 1`` does."""

    def __init__(self, player: Player, policy_spec: str | Callable[[], Policy], policy_name: str):
        from policies.registry import make_policy

        self.policy = make_policy(policy_spec) if isinstance(policy_spec, str) else policy_spec()
        self.policy_name = policy_name
        # videos go to a folder on this node and travel back to the driver with the record
        keep = getattr(player, "video_dir", None) is not None
        self.video_dir = tempfile.mkdtemp(prefix="robovlm-ray-videos-") if keep else None
        self.player = dataclasses.replace(player, video_dir=self.video_dir) if keep else player
        self.env = open_env(self.player)
        self.gen: Any = None
        self.pending: tuple = ("done", None)
        self.progress: list[int] = []
        self.announced = False

    def ready(self) -> str:
        return "ready"

    def advance(self, job: Job | None = None) -> tuple:
        """Play the current unit (or start ``job``) up to its next policy reset or its end:
        ``("reset", steps after each earlier reset)`` or ``("done", record, {video file: bytes})``.
        """
        if job is not None:
            self.gen, self.progress, self.announced = play(self.player, self.env, job), [], False
            self.pending = _advance(self.gen, None)
        while self.pending[0] == "act":
            _, obs, reset = self.pending
            if reset is not None:
                if not self.announced:
                    self.announced = True
                    return ("reset", list(self.progress))
                self.announced = False
                self.progress.append(0)
            (answer,) = policy_round(self.policy, [(0, obs, reset)], self.policy_name, self.player)
            if not isinstance(answer, Abort) and self.progress:
                self.progress[-1] += 1
            self.pending = _advance(self.gen, answer)
        record = self.pending[1]
        self.gen = None
        return ("done", record, self._take_video(record))

    def _take_video(self, record: dict) -> dict[str, bytes]:
        if self.video_dir is None or "video" not in record:
            return {}
        path = Path(self.video_dir) / record["video"]
        data = path.read_bytes()
        path.unlink()
        return {record["video"]: data}

    def close(self) -> None:
        close_env(self.env)
        with contextlib.suppress(Exception):
            self.policy.close()
        if self.video_dir is not None:
            shutil.rmtree(self.video_dir, ignore_errors=True)


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def connect(address: str | None, n_chains: int) -> Iterator[Any]:
    """Join Ray for the block: this process's connection, else a new local instance (``address``
    None or ``"local"``) or the cluster at ``address``; Ray is left as found.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    common = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if address in (None, LOCAL):
        # "local": a new instance even where a cluster runs on this machine (that one is --ray auto)
        ray.init(address="local", num_cpus=max(1, min(_usable_cpus(), n_chains)), **common)
    else:
        _check_reachable(address)
        try:
            ray.init(address=address, **common)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            hint = (
                ""
                if os.environ.get("RAY_AUTH_MODE")
                else "; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token "
                "and its token (~/.ray/auth_token or RAY_AUTH_TOKEN) when joined by address"
            )
            raise RuntimeError(f"--ray {address}: cannot connect to the Ray cluster: {exc}{hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str, timeout_s: float = 10.0) -> None:
    """Fail fast on a ``host:port`` nothing listens on (``ray.init`` would retry for
    minutes); other forms are left to Ray.
    """
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise RuntimeError(f"--ray {address}: no Ray cluster answers there ({exc})") from None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _death_reason(exc: BaseException) -> str:
    """A one-line account of a Ray actor's death: what Ray says first, and the exit detail."""
    text = _ANSI.sub("", str(exc)).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    pid = re.search(r"\bpid: (\d+)", text)
    detail = re.search(r"Worker exit detail: (.*?\.)(?:\s|$)", text)
    extras = [f"pid {pid.group(1)}"] if pid else []
    if detail:
        extras.append(detail.group(1))
    return f"{first} ({'; '.join(extras)})" if extras else first


def run_units(
    policy_spec: str | Callable[[], Policy],
    jobs: Sequence[Job],
    player: Player,
    *,
    address: str | None = LOCAL,
    policy_name: str = "policy",
    on_result: Callable[[dict], None] | None = None,
    actors: int | None = None,
) -> list[dict]:
    """:func:`bench.engine.run_units` on Ray: the same records, in job order.

    ``policy_spec``: what each actor builds its policy from (a ``--policy`` spec or a picklable factory);
    ``player``: the suite's picklable player (a dataclass; its ``video_dir`` is replaced on the actor);
    ``actors``: defaults to the cluster's CPUs. Raises ``RuntimeError`` when ray is missing, the cluster
    cannot be reached or an actor cannot build its env or policy.
    """
    queue = deque(jobs)
    if not queue:
        return []
    videos = getattr(player, "video_dir", None)
    results: dict[int, dict] = {}

    with connect(address, len(queue)) as ray:
        Actor = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(UnitActor)
        n_actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        n_actors = min(n_actors, len(queue))

        class Slot:
            """One actor and the unit it plays: ``progress`` (steps after each reset it reported)."""

            def __init__(self) -> None:
                self.actor = Actor.remote(player, policy_spec, policy_name)
                self.job: Job | None = None
                self.progress: list[int] = []
                self.begun = False
                self.ref = self.actor.ready.remote()

            def start_next(self) -> None:
                self.job = queue.popleft() if queue else None
                self.progress, self.begun = [], False
                self.ref = None if self.job is None else self.actor.advance.remote(self.job)

        def finish(job: Job, record: dict) -> None:
            results[job.position] = record
            if on_result is not None:
                on_result(record)

        pool: list[Slot] = []
        try:
            pool.extend(Slot() for _ in range(n_actors))
            while True:
                waiting = {s.ref: s for s in pool if s.ref is not None}
                if not waiting:
                    break
                done, _ = ray.wait(list(waiting), num_returns=1)
                slot = waiting[done[0]]
                try:
                    reply = ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    if slot.job is None:  # the actor died while building its env or policy
                        message = _ANSI.sub("", str(exc)).strip()
                        raise RuntimeError(
                            f"a Ray actor could not build its env or policy {policy_name!r}:\n{message}"
                        ) from None
                    if isinstance(exc, ray.exceptions.RayActorError):
                        why = f"Ray actor died: {_death_reason(exc)}"
                    else:  # the actor's own code raised (a bug): its unit's state is lost all the same
                        lines = _ANSI.sub("", str(exc)).strip().splitlines() or [type(exc).__name__]
                        why = f"Ray actor raised {lines[-1]}"
                    # the steps after the last reset are unknown: recorded as 0
                    progress = [*slot.progress, 0] if slot.begun else []
                    record = player.failed(slot.job, f"{WORKER_DIED}: {why}", progress)
                    ray.kill(slot.actor, no_restart=True)
                    job = slot.job
                    if queue:  # a fresh actor takes the next unit once ready
                        pool[pool.index(slot)] = Slot()
                    else:
                        pool.remove(slot)
                    finish(job, record)
                    continue
                if reply[0] == "reset":
                    slot.progress, slot.begun = reply[1], True
                    slot.ref = slot.actor.advance.remote()
                    continue
                if reply[0] == "done":
                    _, record, files = reply
                    for name, data in files.items():
                        Path(videos).mkdir(parents=True, exist_ok=True)
                        (Path(videos) / name).write_bytes(data)
                    job = slot.job
                    slot.start_next()
                    finish(job, record)
                else:  # "ready": the actor has built its env and policy
                    slot.start_next()
            if pool:  # let envs and policies close (e.g. a remote policy's connection)
                ray.wait([s.actor.close.remote() for s in pool], num_returns=len(pool), timeout=30)
        finally:
            for slot in pool:
                with contextlib.suppress(Exception):
                    ray.kill(slot.actor, no_restart=True)
    return [results[pos] for pos in sorted(results)]
