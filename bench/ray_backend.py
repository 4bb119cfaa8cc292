"""Ray backend of the CALVIN suite: ``python -m bench.run ... --ray [ADDRESS]``.

``--ray`` alone starts a local Ray instance (or uses the one this process already joined);
``--ray ADDRESS`` (``auto``, ``ray://host:10001``, ``host:6379``) joins that cluster. Example::

    ray start --head                      # on the head node, then ray start --address=... on the others
    python -m bench.run --policy expert --chains 1000 --ray auto --out runs/expert_D
    RAY_AUTH_MODE=token python -m bench.run ... --ray HEAD_IP:6379   # by address: Ray's token auth

Ray (2.60) only picks its authentication token up by itself for ``auto``; by explicit address, set
``RAY_AUTH_MODE=token`` (the token comes from ``~/.ray/auth_token`` or ``RAY_AUTH_TOKEN``).

Design: one Ray actor per env, each holding its own simulator **and its own copy of the policy**,
built from the ``--policy`` spec inside the actor. An actor runs whole chains with the engine of
:mod:`bench.calvin_eval` exactly as ``--workers 1`` does (:func:`~bench.calvin_eval.run_chain`,
policy slot 0, one observation per ``act_batch`` call), so a chain's record is identical to a
``--workers 1`` run with the same seed: its env and policy seeds are a pure function of
``(seed, chain, subtask)``. This was chosen over env actors with the policy in the driver (batched
inference, as ``--workers N`` does) because that would need a Ray round trip carrying both camera
images for every env step (~1800 per chain), which would dominate the simulator's own cost and tie
every node to the driver's pace; here actors talk to the driver once per subtask. The price: every
actor loads the policy (memory; no batching across envs), and the policy must be buildable from its
spec in another process (a registered name, ``package.module:Class`` importable on the nodes,
``remote:ws://...``, ``vla:DIR`` with DIR readable there); actors reserve one CPU each and no GPU.

Actors: one per CPU of the cluster (``ray.cluster_resources()["CPU"]``), at most one per chain;
``--workers`` is the local backend's option and must stay 1 with ``--ray``. A local instance
started here gets ``num_cpus = min(usable cores, chains)``.

Records stream to ``on_result`` (``episodes.jsonl``) as chains finish, so ``--resume`` and
``--fail-fast`` work as with the local backend. An actor that dies (crash, ``os._exit``, a lost
node) fails its chain with ``stop_reason`` ``error:Ray actor died: ...`` and is replaced; the
subtasks the chain finished before are counted (actors report at each subtask start), the steps of
the subtask it was running are unknown and recorded as 0. An actor that cannot build its env or its
policy stops the run, like an env that cannot be created locally. Hung actors are not detected
(no ``worker_timeout_s``). Videos (``--record``) are written by the actor to a temporary folder
on its node and sent back to the driver, so they land in ``OUT/videos`` on any cluster.
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

from bench.calvin_eval import (
    CAMERAS,
    Abort,
    CalvinEnvFactory,
    ChainJob,
    EnvFactory,
    RunConfig,
    _advance,
    _new_record,
    _policy_round,
    run_chain,
)
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


class _Slot0:
    """What :func:`bench.calvin_eval._policy_round` needs of a worker: its policy slot."""

    slot = 0


class ChainActor:
    """Body of a Ray actor: one env and one policy; runs chains as ``--workers 1`` does."""

    def __init__(
        self,
        make_env: EnvFactory,
        policy_spec: str | Callable[[], Policy],
        policy_name: str,
        cfg: RunConfig,
        record_any: bool,
    ):
        from policies.registry import make_policy

        self.policy = make_policy(policy_spec) if isinstance(policy_spec, str) else policy_spec()
        self.policy_name = policy_name
        cameras = CAMERAS if getattr(self.policy, "needs_images", True) else ()
        env_kwargs: dict[str, Any] = {}
        if record_any:  # as in calvin_eval.evaluate_chains: every env renders when any chain records
            env_kwargs["render_mode"] = "rgb_array"
        if getattr(self.policy, "action_mode", "relative") != "relative":
            env_kwargs["action_mode"] = self.policy.action_mode
        # videos go to a folder on this node and travel back to the driver with the record
        keep = record_any and cfg.video_dir is not None
        self.video_dir = tempfile.mkdtemp(prefix="robovlm-ray-videos-") if keep else None
        self.cfg = dataclasses.replace(cfg, video_dir=self.video_dir)
        try:
            self.env = make_env(cfg.scene, cameras, **env_kwargs)
        except Exception as exc:
            raise RuntimeError(f"could not create the environment: {type(exc).__name__}: {exc}") from exc
        self.gen: Any = None
        self.pending: tuple = ("done", None)
        self.steps: list[int] = []
        self.announced = False

    def ready(self) -> str:
        return "ready"

    def advance(self, job: ChainJob | None = None) -> tuple:
        """Run the current chain (or start ``job``) up to the start of its next subtask, or its end.

        Returns ``("subtask", steps of the finished subtasks)`` before each subtask starts, and
        ``("done", record, {video file name: bytes})`` at the end of the chain.
        """
        if job is not None:
            self.gen, self.steps, self.announced = run_chain(self.env, job, self.cfg), [], False
            self.pending = _advance(self.gen, None)
        while self.pending[0] == "act":
            _, obs, reset = self.pending
            if reset is not None:
                if not self.announced:
                    self.announced = True
                    return ("subtask", list(self.steps))
                self.announced = False
                self.steps.append(0)
            (answer,) = _policy_round(self.policy, [(_Slot0, obs, reset)], self.policy_name)
            if not isinstance(answer, Abort):
                self.steps[-1] += 1
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
        with contextlib.suppress(Exception):
            self.env.close()
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
    """Join Ray for the duration of the block: reuse this process's connection if there is one,
    else start a local instance (``address`` None or ``"local"``) or join ``address``; leave Ray
    as found."""
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
    """Fail fast on a ``host:port`` that nothing listens on (``ray.init`` would retry for many
    minutes); other forms (``auto``, ``ray://...``) are left to Ray."""
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


def evaluate_chains(
    policy: Policy | None,
    chains: Sequence[Any],
    *,
    address: str | None = LOCAL,
    policy_spec: str | Callable[[], Policy] | None = None,
    scene: str = "D",
    seed: int = 0,
    max_steps: int = 360,
    make_env: EnvFactory | None = None,
    record: int = 0,
    video_dir: str | Path | None = None,
    policy_name: str = "policy",
    instruction_for: Callable[[str], str] | None = None,
    on_result: Callable[[dict], None] | None = None,
    actors: int | None = None,
) -> list[dict]:
    """:func:`bench.calvin_eval.evaluate_chains` on a Ray cluster; same records, same order.

    Args:
        policy: The caller's policy instance; not used for inference (each actor builds its own).
        address: ``"local"``/None: this process's Ray connection or a new local instance; else the
            address of a cluster to join.
        policy_spec: What each actor builds its policy from: a ``--policy`` spec for
            :func:`policies.registry.make_policy`, or a picklable zero-argument factory. Defaults to
            ``policy_name`` (``bench.run`` passes the spec there).
        make_env: Picklable env factory (as for worker processes); defaults to :class:`CalvinEnvFactory`.
        actors: Number of Ray actors; defaults to the cluster's CPUs. Never more than chains.

    The other arguments are those of :func:`bench.calvin_eval.evaluate_chains`.

    Raises:
        RuntimeError: ray is not installed, the cluster cannot be reached, or an actor cannot build
            its env or policy.
    """
    del policy  # the actors build their own copies from policy_spec
    if max_steps < 1:
        raise ValueError(f"need max_steps >= 1, got {max_steps}")
    spec = policy_name if policy_spec is None else policy_spec
    if instruction_for is None:
        from envs.calvin.language import eval_instruction as instruction_for
    make_env = make_env or CalvinEnvFactory()
    videos = Path(video_dir) if video_dir is not None and record > 0 else None
    cfg = RunConfig(scene, seed, max_steps, None if videos is None else str(videos))  # actors record locally
    jobs = deque(
        ChainJob(pos, int(c.index), dict(c.state), tuple(c.tasks), tuple(map(instruction_for, c.tasks)))
        for pos, c in enumerate(chains)
    )
    for pos in range(min(record, len(jobs))):
        jobs[pos] = dataclasses.replace(jobs[pos], record=True)
    if not jobs:
        return []
    results: dict[int, dict] = {}

    with connect(address, len(jobs)) as ray:
        Actor = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(ChainActor)
        n_actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
        n_actors = min(n_actors, len(jobs))
        init = (make_env, spec, policy_name, cfg, record > 0)

        class Slot:
            """One actor and the chain it runs: ``steps`` of its finished subtasks, ``begun`` whether
            a subtask has started (as reported by the actor)."""

            def __init__(self) -> None:
                self.actor = Actor.remote(*init)
                self.job: ChainJob | None = None
                self.steps: list[int] = []
                self.begun = False
                self.ref = self.actor.ready.remote()

            def start_next(self) -> None:
                self.job = jobs.popleft() if jobs else None
                self.steps, self.begun = [], False
                self.ref = None if self.job is None else self.actor.advance.remote(self.job)

        def finish(record_: dict) -> None:
            results[record_["position"]] = record_
            if on_result is not None:
                on_result(record_)

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
                    else:  # the actor's own code raised (a bug): its chain state is lost all the same
                        lines = _ANSI.sub("", str(exc)).strip().splitlines() or [type(exc).__name__]
                        why = f"Ray actor raised {lines[-1]}"
                    record_ = _new_record(slot.job, cfg)
                    # the steps of the subtask that was running are unknown: recorded as 0
                    steps = [*slot.steps, 0] if slot.begun else []
                    record_.update(completed=len(slot.steps), steps=steps, stop_reason=f"error:{why}")
                    ray.kill(slot.actor, no_restart=True)
                    if jobs:  # a fresh actor takes the next chain once ready
                        pool[pool.index(slot)] = Slot()
                    else:
                        pool.remove(slot)
                    finish(record_)
                    continue
                if reply[0] == "subtask":
                    slot.steps, slot.begun = reply[1], True
                    slot.ref = slot.actor.advance.remote()
                    continue
                if reply[0] == "done":
                    _, record_, files = reply
                    for name, data in files.items():
                        videos.mkdir(parents=True, exist_ok=True)
                        (videos / name).write_bytes(data)
                    slot.start_next()
                    finish(record_)
                else:  # "ready": the actor has built its env and policy
                    slot.start_next()
            if pool:  # let envs and policies close (e.g. a remote policy's connection)
                ray.wait([s.actor.close.remote() for s in pool], num_returns=len(pool), timeout=30)
        finally:
            for slot in pool:
                with contextlib.suppress(Exception):
                    ray.kill(slot.actor, no_restart=True)
    return [results[pos] for pos in sorted(results)]
