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

The folder is an episode store (:mod:`trainer.data.store`). Interrupting the command (Ctrl-C,
``kill -9``) loses at most the episodes in flight: running it again with the same arguments
resumes, skipping the slots already stored or failed. ``stats.json`` (normalisation statistics)
is written at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import sys
from collections.abc import Iterator, Sequence
from dataclasses import MISSING, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SUITES = ("calvin",)


def _arg(default: Any = MISSING, help: str = "", **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class CollectArgs:
    out: str = _arg(
        help="dataset folder (created, or resumed if it holds a collection with the same settings)"
    )
    suite: str = _arg("calvin", "benchmark suite", choices=SUITES)
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


# --------------------------------------------------------------------------- recording one episode


class TargetDrift:
    """Noise injection for recovery data (DART-style, correlated): an AR(1) drift of the executed
    target pose away from the expert's, ``e[t+1] = corr * e[t] + sqrt(1 - corr**2) * std * xi``,
    so that its stationary standard deviation is ``std`` metres in position and the same in
    relative-action units in orientation (``std / 0.02 * 0.05`` rad). The gripper is never
    perturbed. Recording the expert's clean action from the drifted state shows the policy how to
    get back on the path, which clean demonstrations never do.
    """

    def __init__(self, std: float, corr: float, seed: tuple[int, ...]) -> None:
        from envs.calvin.env import ORN_SCALE, POS_SCALE

        self.scale = np.array([std] * 3 + [std / POS_SCALE * ORN_SCALE] * 3)
        self.corr = corr
        self.offset = np.zeros(6)
        self.rng = np.random.default_rng(list(seed))

    def perturb(self, action: np.ndarray) -> np.ndarray:
        if not self.scale.any():
            return action
        xi = self.rng.standard_normal(6)
        self.offset = self.corr * self.offset + np.sqrt(1.0 - self.corr**2) * self.scale * xi
        out = np.array(action, dtype=np.float32, copy=True)
        out[:6] += self.offset
        return out


class Recorder:
    """Owns one env per scene and the expert; records the episode of a plan."""

    def __init__(self, args: CollectArgs) -> None:
        from policies.expert import ExpertPolicy

        self.args = args
        self.envs: dict[str, Any] = {}
        self.expert = ExpertPolicy()

    def _env(self, scene: str) -> Any:
        if scene not in self.envs:
            from envs.calvin.env import CalvinEnv

            self.envs[scene] = CalvinEnv(
                scene=scene,
                static_size=self.args.static_size,
                gripper_size=self.args.gripper_size,
                action_mode="absolute",
            )
        return self.envs[scene]

    def record(self, plan: Plan) -> dict[str, Any]:
        """Returns ``{"ok": True, "data": {...}, "info": {...}}`` or ``{"ok": False, "reason": ...}``."""
        from envs.calvin.env import relative_action

        env = self._env(plan.scene)
        env.set_cameras(())
        obs, _ = env.reset(seed=plan.env_seed, options={"state": plan.chain_state})
        for k, task in enumerate(plan.chain_tasks[: plan.position]):
            ok, obs, _ = self._run(env, task, plan.scene, obs)
            if not ok:
                return {"ok": False, "reason": f"set-up task {k} ({task}) failed"}
        env.set_cameras(("static", "gripper"))
        obs = env.observe()
        frames: dict[str, list[np.ndarray]] = {k: [] for k in (*obs, "actions", "rel_actions")}

        def keep(o: dict, action: np.ndarray, rel: np.ndarray) -> None:
            for key, value in o.items():
                frames[key].append(value)
            frames["actions"].append(np.asarray(action, dtype=np.float32))
            frames["rel_actions"].append(rel)

        env.begin_subtask(plan.task)
        target = env.target_pose().tolist()  # the expert starts from the env's target, not the measured pose
        self.expert.reset(
            plan.instruction, info={"task": plan.task, "scene": plan.scene, "target_pose": target}
        )
        drift = TargetDrift(self.args.noise, self.args.noise_corr, seed=(self.args.seed, 3, plan.slot))
        for _ in range(self.args.max_steps):
            action = self.expert.act(obs)
            before = env.target_pose()
            current = obs
            obs, _, _, _, info = env.step(drift.perturb(action))
            # The label is the expert's clean action from the target the env actually holds: with a
            # drift it includes the correction back to the expert's path. Without one, the expert
            # starts from the env's target, so relative actions stay within [-1, 1] and the clip
            # only guards the store's range.
            rel = np.clip(relative_action(before, action[:6], action[6]), -1.0, 1.0)
            keep(current, action, rel)
            if info["success"]:
                data = {k: np.stack(v) for k, v in frames.items()}
                info_out = {
                    "task": plan.task,
                    "instruction": plan.instruction,
                    "scene": plan.scene,
                    "slot": plan.slot,
                    "env_seed": plan.env_seed,
                    "chain_index": plan.chain_index,
                    "chain_state": plan.chain_state,
                    "chain_tasks": list(plan.chain_tasks),
                    "position": plan.position,
                }
                return {"ok": True, "data": data, "info": info_out}
        return {"ok": False, "reason": f"{plan.task} not solved in {self.args.max_steps} steps"}

    def _run(self, env: Any, task: str, scene: str, obs: dict) -> tuple[bool, dict, int]:
        env.begin_subtask(task)
        self.expert.reset("", info={"task": task, "scene": scene, "target_pose": env.target_pose().tolist()})
        for step in range(self.args.max_steps):
            obs, _, _, _, info = env.step(self.expert.act(obs))
            if info["success"]:
                return True, obs, step + 1
        return False, obs, self.args.max_steps

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def _worker(args: CollectArgs, jobs: Any, results: Any) -> None:
    recorder = Recorder(args)
    try:
        for plan in iter(jobs.get, None):
            try:
                results.put((plan.slot, recorder.record(plan)))
            except Exception as exc:  # a crash in one episode fails that slot only
                results.put((plan.slot, {"ok": False, "reason": f"error: {type(exc).__name__}: {exc}"}))
    finally:
        recorder.close()


# --------------------------------------------------------------------------- the collection loop


def env_metadata(args: CollectArgs) -> dict[str, Any]:
    """What rebuilds the simulator that produced the data (stored in meta.json)."""
    from bench import __version__

    return {
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
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with locked(out):
        return _collect_locked(args, tasks, out)


def _collect_locked(args: CollectArgs, tasks: list[str], out: Path) -> dict[str, Any]:
    from bench.rundir import append_jsonl
    from envs.calvin.chains import generate_chains
    from trainer.data.stats import compute_dataset_stats, write_stats
    from trainer.data.store import EpisodeStore, EpisodeWriter

    writer = EpisodeWriter(out, env=env_metadata(args))
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

    pending = slots()
    if args.workers <= 1:
        recorder = Recorder(args)
        try:
            while len(done) < args.episodes:
                slot = next(pending)
                handle(slot, recorder.record(plan_slot(slot, args, tasks, chains)))
        finally:
            recorder.close()
    else:
        ctx = mp.get_context("forkserver")
        jobs, results = ctx.Queue(), ctx.Queue()
        procs = [
            ctx.Process(target=_worker, args=(args, jobs, results), daemon=True) for _ in range(args.workers)
        ]
        for proc in procs:
            proc.start()
        in_flight: set[int] = set()
        try:
            while len(done) < args.episodes or in_flight:
                while len(done) + len(in_flight) < args.episodes and len(in_flight) < 2 * args.workers:
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


def parse_args(argv: Sequence[str] | None = None) -> CollectArgs:
    parser = argparse.ArgumentParser(prog="python -m trainer.collect", description=__doc__.split("\n\n")[0])
    for f in dataclasses.fields(CollectArgs):
        name = "--" + f.name.replace("_", "-")
        meta = dict(f.metadata)
        kw: dict[str, Any] = {"help": meta.pop("help", "")}
        if f.type == "bool":
            kw["action"] = "store_true"
        else:
            kw.update(meta)
            if "nargs" not in kw:
                kw["type"] = {"int": int, "float": float}.get(f.type, str)
        if f.default_factory is not MISSING:
            kw["default"] = f.default_factory()
        elif f.default is MISSING:
            kw["required"] = True
        else:
            kw["default"] = f.default
        parser.add_argument(name, **kw)
    return CollectArgs(**vars(parser.parse_args(argv)))


def check_args(args: CollectArgs) -> None:
    from envs import CALVIN_SCENES

    bad = [s for s in args.scenes if s not in CALVIN_SCENES]
    if bad:
        raise ValueError(f"unknown scene(s) {bad} for suite calvin; valid: {', '.join(CALVIN_SCENES)}")
    for name in ("episodes", "workers", "max_steps", "chain_pool"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not 0.0 <= args.noise <= 0.05:
        raise ValueError(f"--noise is a drift std in metres, expected 0..0.05, got {args.noise}")
    if not 0.0 <= args.noise_corr < 1.0:
        raise ValueError(f"--noise-corr must be in [0, 1), got {args.noise_corr}")


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
    print(
        f"stored {counts['stored']} episodes in {args.out} ({counts['failed']} failed expert episodes dropped)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
