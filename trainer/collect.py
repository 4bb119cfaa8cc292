"""Record language-labelled expert demonstrations: ``python -m trainer.collect --out DIR``.

Example::

    python -m trainer.collect --suite calvin --scenes A B C --episodes 300 --workers 2 --out data/abc

Each episode is one task, recorded from a state that CALVIN's chain generator produces: the plan for
episode slot ``i`` (a pure function of ``--seed`` and ``i``) picks a task (tasks cycle in shuffled
rounds, so all 34 are balanced), a scene (round robin over ``--scenes``), a generated chain that
contains the task and a training phrasing of it. The expert plays the chain's earlier tasks
unrecorded with the cameras off (they set the state up: a block in the hand for ``place_in_slider``,
an open drawer for ``lift_red_block_drawer``...), then the task itself is recorded frame by frame:
both camera images, ``robot_obs``, ``scene_obs``, the absolute action the expert sent and the
equivalent relative action. A failed expert episode is dropped and counted in
``DIR/failures.jsonl``, never stored.

``--policy SPEC --beta B`` collects DAgger data: the policy (a ``bench.run --policy`` spec, e.g.
``vla:runs/x/latest``) acts alongside the expert on every observation; per step the policy's action
is executed with probability ``1 - B`` and the expert's with probability ``B`` (seeded by
``(--seed, slot)``), while the expert's clean action is what is recorded, so the labels say how the
expert would act from where the policy led the arm. Set-up tasks are played by the expert alone.

``--env calvin_env`` records in CALVIN's own ``PlayTableSimEnv`` (a checkout through
``CALVIN_ENV_DIR``, judged by CALVIN's ``Tasks``) instead of our table: same plans, same expert,
same fields. ``meta.json`` records the backend, so a store is never resumed with the other one.

The folder is an episode store (:mod:`trainer.data.store`). Interrupting the command (Ctrl-C,
``kill -9``) loses at most the episodes in flight: running it again with the same arguments
resumes, skipping the slots already stored or failed. ``stats.json`` (normalisation statistics)
is written at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import sys
from collections.abc import Iterator, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.calvin.backends import BACKENDS
from trainer.recorder import Recorder, check_store_fields, make_collect_policy, record_worker

SUITES = ("calvin",)


def _arg(default: Any = MISSING, help: str = "", **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class CollectArgs:
    out: str = _arg(
        help="dataset folder (created, or resumed if it holds a collection with the same settings)"
    )
    suite: str = _arg("calvin", "benchmark suite", choices=SUITES)
    env: str = _arg(
        "ours",
        "play table backend: ours, or calvin_env (CALVIN's own env, via CALVIN_ENV_DIR)",
        choices=BACKENDS,
    )
    scenes: list[str] = field(
        default_factory=lambda: ["A", "B", "C"],
        metadata={"help": "scenes to record in, round robin", "nargs": "+"},
    )
    episodes: int = _arg(100, "number of episodes to store (failed expert episodes do not count)")
    workers: int = _arg(1, "parallel simulator processes (1 records in-process)")
    seed: int = _arg(0, "collection seed: episode slot i is a pure function of (seed, i)")
    tasks: list[str] | None = _arg(None, "record only these tasks (default: all 34)", nargs="+")
    static_size: int = _arg(200, "static camera image size (pixels)")
    gripper_size: int = _arg(84, "gripper camera image size (pixels)")
    max_steps: int = _arg(360, "step budget of each task, the recorded one and the set-up ones")
    chain_pool: int = _arg(1000, "generated chains to draw set-up sequences from")
    noise: float = _arg(
        0.0,
        "recovery data: std (metres) of a drift added to the executed target while the expert's clean "
        "action is recorded (orientation drifts by the same amount in action units); 0 = clean expert",
    )
    noise_corr: float = _arg(0.95, "per-step correlation of that drift (0 = white noise, < 1)")
    policy: str = _arg(
        "expert",
        "policy that acts (a bench.run --policy spec, e.g. vla:runs/x/latest); the expert labels every step",
    )
    beta: float = _arg(0.0, "with --policy: probability that a step executes the expert's action instead")
    max_attempts: int = _arg(0, "stop after this many attempted episodes, stored + failed (0 = no limit)")
    quiet: bool = _arg(False, "no progress bar")


@dataclass(frozen=True)
class Plan:
    """What episode slot ``slot`` records."""

    slot: int
    task: str
    scene: str
    instruction: str
    env_seed: int
    chain_index: int
    chain_state: dict
    chain_tasks: tuple[str, ...]
    position: int  # index of ``task`` in ``chain_tasks``; the tasks before it are set-up


def plan_slot(slot: int, args: CollectArgs, tasks: Sequence[str], chains: Sequence[Any]) -> Plan:
    """The plan of episode slot ``slot``: depends only on ``(args.seed, slot)`` and the chain pool."""
    from envs.calvin.language import train_instructions

    round_, pos = divmod(slot, len(tasks))
    order = np.random.default_rng([args.seed, 1, round_]).permutation(len(tasks))
    task = tasks[int(order[pos])]
    rng = np.random.default_rng([args.seed, 2, slot])
    candidates = [c for c in chains if task in c.tasks]
    if not candidates:
        raise ValueError(f"no chain in the pool of {len(chains)} contains task {task!r}; raise --chain-pool")
    chain = candidates[int(rng.integers(len(candidates)))]
    phrasings = train_instructions(task)
    return Plan(
        slot=slot,
        task=task,
        scene=args.scenes[slot % len(args.scenes)],
        instruction=phrasings[int(rng.integers(len(phrasings)))],
        env_seed=int(rng.integers(2**31 - 1)),
        chain_index=chain.index,
        chain_state=dict(chain.state),
        chain_tasks=tuple(chain.tasks),
        position=chain.tasks.index(task),
    )


# --------------------------------------------------------------------------- the collection loop


def env_metadata(args: CollectArgs, policy: Any = None) -> dict[str, Any]:
    """What rebuilds the simulator that produced the data (stored in meta.json). With an acting
    policy the collector also records its spec, class and provenance (checkpoint and SHA-256) and
    beta, so that resuming the store with another policy or other weights is refused."""
    from bench import __version__

    meta = {
        "suite": args.suite,
        "env_id": "robovlm/CalvinPlayTable-v0",
        "scenes": list(args.scenes),
        "static_size": args.static_size,
        "gripper_size": args.gripper_size,
        "control_hz": 30,
        "action_scale": {"position_m": 0.02, "orientation_rad": 0.05},
        "actions": "absolute target TCP pose (x, y, z, Euler xyz) + gripper",
        "rel_actions": "relative action in [-1, 1] (CALVIN's)",
        "collector": {
            "policy": "expert",
            "seed": args.seed,
            "package_version": __version__,
            "noise": {"std_m": args.noise, "corr": args.noise_corr},
        },
    }
    if args.policy != "expert":
        from bench.rundir import plain_json, policy_record

        meta["collector"].update(policy=args.policy, beta=args.beta, **policy_record(policy))
        meta = json.loads(json.dumps(meta, default=plain_json))  # as meta.json will hold it
    if args.env != "ours":  # absent means our table: stores from before the option resume as they were
        meta["backend"] = args.env
    return meta


def _read_failures(path: Path) -> dict[int, str]:
    """Slot -> reason of the failed slots (a line cut by an interruption is cut away)."""
    from bench.rundir import read_jsonl_numbered

    if not path.exists():
        return {}
    out = {}
    for lineno, rec in read_jsonl_numbered(path, truncate_cut_line=True):
        if not isinstance(rec.get("slot"), int) or "reason" not in rec:
            raise ValueError(f"{path}: line {lineno} needs an integer 'slot' and a 'reason', got {rec}")
        out[rec["slot"]] = rec["reason"]
    return out


def collect(args: CollectArgs) -> dict[str, Any]:
    """Run (or resume) a collection; returns counts ``{"stored", "failed", "attempted"}``.

    The store is locked while this runs: a second collection into the same folder stops at once,
    naming the folder and the process that holds it.
    """
    from bench.rundir import locked
    from envs.calvin.chains import TASKS, check_task_name

    tasks = list(args.tasks or TASKS)
    for t in tasks:
        check_task_name(t)
    check_store_fields(args)  # a backend that cannot give the store's fields is refused first
    policy = make_collect_policy(args)  # refused (wrong cameras, bad spec) before anything is written
    try:
        env = env_metadata(args, policy)
        if args.workers > 1 and policy is not None:
            policy.close()  # each worker builds its own
            policy = None
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with locked(out):
            return _collect_locked(args, tasks, out, env, policy)
    finally:
        if policy is not None:
            policy.close()


def _collect_locked(
    args: CollectArgs, tasks: list[str], out: Path, env: dict[str, Any], policy: Any
) -> dict[str, Any]:
    from bench.rundir import append_jsonl
    from envs.calvin.chains import generate_chains
    from trainer.data.stats import compute_dataset_stats, write_stats
    from trainer.data.store import EpisodeStore, EpisodeWriter

    writer = EpisodeWriter(out, env=env)
    done = {int(i["slot"]) for i in writer.committed_infos()}
    failures_path = out / "failures.jsonl"
    failed = _read_failures(failures_path)
    chains = generate_chains(n=args.chain_pool, seed=args.seed + 1)

    def slots() -> Iterator[int]:
        slot = 0
        while True:
            if slot not in done and slot not in failed:
                yield slot
            slot += 1

    progress = None
    if not args.quiet:
        from tqdm import tqdm

        progress = tqdm(total=args.episodes, initial=min(len(done), args.episodes), unit="ep", desc="collect")

    def handle(slot: int, result: dict) -> None:
        if result["ok"]:
            from trainer.data.store import Episode

            writer.add(Episode(result["data"], result["info"]))
            done.add(slot)
            if progress:
                progress.update(1)
        else:
            failed[slot] = result["reason"]
            append_jsonl(failures_path, {"slot": slot, "reason": result["reason"]})
        if progress:
            progress.set_postfix(failed=len(failed))

    def may_attempt(in_flight: int = 0) -> bool:
        return not args.max_attempts or len(done) + len(failed) + in_flight < args.max_attempts

    pending = slots()
    if args.workers <= 1:
        recorder = Recorder(args, policy)
        try:
            while len(done) < args.episodes and may_attempt():
                slot = next(pending)
                handle(slot, recorder.record(plan_slot(slot, args, tasks, chains)))
        finally:
            recorder.close()
    else:
        ctx = mp.get_context("forkserver")
        jobs, results = ctx.Queue(), ctx.Queue()
        procs = [
            ctx.Process(target=record_worker, args=(args, jobs, results), daemon=True)
            for _ in range(args.workers)
        ]
        for proc in procs:
            proc.start()
        in_flight: set[int] = set()
        try:
            while len(done) < args.episodes or in_flight:
                while (
                    len(done) + len(in_flight) < args.episodes
                    and len(in_flight) < 2 * args.workers
                    and may_attempt(len(in_flight))
                ):
                    slot = next(pending)
                    in_flight.add(slot)
                    jobs.put(plan_slot(slot, args, tasks, chains))
                if not in_flight:
                    break
                if not any(p.is_alive() for p in procs):
                    raise RuntimeError("all collection workers died")
                try:
                    slot, result = results.get(timeout=5.0)
                except Exception:
                    continue
                in_flight.discard(slot)
                if len(done) < args.episodes or not result["ok"]:
                    handle(slot, result)
        finally:
            for _ in procs:
                jobs.put(None)
            for proc in procs:
                proc.join(timeout=10)
                if proc.is_alive():
                    proc.terminate()
    if progress:
        progress.close()
    store = EpisodeStore(out)
    write_stats(out, compute_dataset_stats(store))
    return {"stored": len(store), "failed": len(failed), "attempted": len(store) + len(failed)}


# --------------------------------------------------------------------------- command line


_TYPES = {"int": int, "float": float, "str": str, "str | None": str, "int | None": int, "float | None": float}


def dataclass_parser(cls: type, prog: str, description: str) -> argparse.ArgumentParser:
    """The argparse parser of an arguments dataclass: ``--name`` per field (its help line from the
    field's metadata); a field with ``positional=True`` in its metadata is positional."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    for f in dataclasses.fields(cls):
        meta = dict(f.metadata)
        positional = meta.pop("positional", False)
        name = f.name if positional else "--" + f.name.replace("_", "-")
        kw: dict[str, Any] = {"help": meta.pop("help", "")}
        if f.type == "bool":
            kw["action"] = "store_true"
        else:
            kw.update(meta)
            if "nargs" not in kw:
                kw["type"] = _TYPES.get(str(f.type), str)
        if f.default_factory is not MISSING:
            kw["default"] = f.default_factory()
        elif f.default is MISSING:
            kw["required"] = True
        else:
            kw["default"] = f.default
        if positional:
            kw.pop("required", None)
        parser.add_argument(name, **kw)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> CollectArgs:
    parser = dataclass_parser(CollectArgs, "python -m trainer.collect", __doc__.split("\n\n")[0])
    return CollectArgs(**vars(parser.parse_args(argv)))


def check_args(args: CollectArgs) -> None:
    from envs import CALVIN_SCENES
    from envs.calvin.backends import check_backend

    bad = [s for s in args.scenes if s not in CALVIN_SCENES]
    if bad:
        raise ValueError(f"unknown scene(s) {bad} for suite calvin; valid: {', '.join(CALVIN_SCENES)}")
    for scene in args.scenes:
        try:
            check_backend(args.env, scene)
        except (ValueError, RuntimeError) as exc:  # a missing or wrong checkout: its one line
            raise ValueError(f"--env {args.env}: {exc}") from None
    for name in ("episodes", "workers", "max_steps", "chain_pool"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.noise <= 0.05:
        raise ValueError(f"--noise is a drift std in metres, expected 0..0.05, got {args.noise}")
    if not 0.0 <= args.noise_corr < 1.0:
        raise ValueError(f"--noise-corr must be in [0, 1), got {args.noise_corr}")
    if not 0.0 <= args.beta <= 1.0:
        raise ValueError(f"--beta is a probability, expected 0..1, got {args.beta}")
    if args.policy == "expert" and args.beta != 0.0:
        raise ValueError(f"--beta {args.beta} mixes in a --policy other than expert, but --policy is expert")
    if args.max_attempts < 0:
        raise ValueError(f"--max-attempts must be >= 0 (0 = no limit), got {args.max_attempts}")


def main(argv: Sequence[str] | None = None) -> int:
    from trainer.data.store import DatasetError

    args = parse_args(argv)
    try:
        check_args(args)
        counts = collect(args)
    except (ValueError, DatasetError, OSError) as exc:
        print(f"trainer.collect: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trainer.collect: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    failed = "failed expert episodes" if args.policy == "expert" else "failed episodes"
    print(f"stored {counts['stored']} episodes in {args.out} ({counts['failed']} {failed} dropped)")
    if counts["stored"] < args.episodes:
        print(
            f"trainer.collect: stopped at --max-attempts {args.max_attempts} with {counts['stored']} of "
            f"{args.episodes} episodes stored",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
