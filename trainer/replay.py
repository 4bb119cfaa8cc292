"""Offline replay: how well a checkpoint predicts demonstrations it never trained on, and what it reads.

``python -m trainer.replay CHECKPOINT [--data DIR] [--language eval recorded wrong]
[--probes none first_frame frozen_state] [--split held_out|train] [--episodes N] [--json FILE]``

Episodes: those the run held out (:func:`trainer.validation.split_episodes` with the run's
``data.val_fraction`` and ``train.seed``), on the store it trained on (``--data``, default its
``data.path``; the frame count must match the checkpoint's statistics); ``--split train`` replays
training episodes instead (the fit, not generalisation). Every frame goes to the policy as a live
observation would, and its action is compared with the recorded one: the arm's squared error per
dimension (normalised units), the share of right gripper commands, overall and within
:data:`NEAR_SWITCH` frames of a recorded switch. Baselines: the training episodes' mean action, and
each task's mean action (what an instruction-only policy could reach).

``--language``: ``eval`` (the task's evaluation phrasing, what ``bench.run`` gives), ``recorded`` (the
episode's training phrasing) or ``wrong`` (a training phrasing of the task half the task list away);
with all three, the frames where the eval phrasing acts like its own task are counted. ``--probes``:
``none``; ``first_frame`` (every camera frozen on the first frame: does it look?); ``frozen_state``
(the state history is the current state repeated: does it read the arm's motion from it?).
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.rundir import read_json_object, write_json_atomic

PROBES = ("none", "first_frame", "frozen_state")
LANGUAGES = ("eval", "recorded", "wrong")
SPLITS = ("held_out", "train")
#: Frames either side of a gripper switch counted as 'near' it.
NEAR_SWITCH = 3


@dataclass
class ReplayResult:
    """One probe and language: ``arm_mse`` (the 6 arm dims, normalised units) and ``arm_mse_per_dim``
    (x, y, z, roll, pitch, yaw), ``gripper_accuracy`` (steps whose gripper sign matches the recording)
    and the same within :data:`NEAR_SWITCH` frames of a recorded switch (None: no switch). ``probe`` is
    ``baseline`` for the constant baselines, whose ``language`` is their name."""

    probe: str
    language: str
    arm_mse: float
    arm_mse_per_dim: list[float]
    gripper_accuracy: float
    gripper_accuracy_near_switch: float | None
    steps: int
    near_switch_steps: int
    episodes: int


@dataclass
class Recording:
    """The replayed episodes' recorded targets frame after frame: ``actions`` (N, 7, normalised), each
    frame's task and ``near_switch`` (N,) (within :data:`NEAR_SWITCH` frames of a gripper switch)."""

    actions: np.ndarray
    tasks: list[str]
    near_switch: np.ndarray


def spread(items: Sequence[int], n: int) -> list[int]:
    """``n`` of ``items`` evenly spread over them (all of them if n >= len(items))."""
    if not items:
        raise ValueError("there are no episodes to replay")
    if n >= len(items):
        return list(items)
    return [int(items[i]) for i in np.linspace(0, len(items) - 1, n).round().astype(int)]


def near_switch(gripper: np.ndarray, window: int = NEAR_SWITCH) -> np.ndarray:
    """(T,) bool: frames within ``window`` frames of a change of sign of the gripper command."""
    sign = np.sign(np.asarray(gripper))
    switches = np.flatnonzero(sign[1:] != sign[:-1]) + 1
    t = np.arange(len(sign))
    if not len(switches):
        return np.zeros(len(sign), dtype=bool)
    return np.abs(t[:, None] - switches[None, :]).min(axis=1) <= window


def run_split(cfg: Any, trained_frames: int | None, store: Any) -> tuple[list[int], list[int]]:
    """(trained, held out) episodes of ``store`` in the run of ``cfg``; ``trained_frames`` (the
    run's statistics' ``n_frames``) must match the store, where alone the split is the run's.
    """
    from trainer.validation import split_episodes

    if trained_frames is not None and int(trained_frames) != store.n_frames:
        raise ValueError(
            f"{store.root}: holds {store.n_frames} frames, the run's training data held {trained_frames} "
            f"(data.path = {cfg.data.path}): its held-out episodes are only known on that store"
        )
    return split_episodes(len(store), cfg.data.val_fraction, cfg.train.seed)


def replay_episodes(cfg: Any, trained_frames: int | None, store: Any, split: str = "held_out") -> list[int]:
    """The episodes of ``store`` the run held out (``split='held_out'``) or trained on (``'train'``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    train, held_out = run_split(cfg, trained_frames, store)
    if split == "train":
        return train
    if not held_out:
        raise ValueError(
            f"the run held no episodes out (data.val_fraction = {cfg.data.val_fraction}), so every "
            "episode was trained on: retrain with data.val_fraction > 0, or pass --split train to "
            "replay training episodes (the fit, not generalisation)"
        )
    return held_out


def suite_language(store: Any) -> Any:
    suite = store.env.get("suite")
    try:
        return importlib.import_module(f"envs.{suite}.language")
    except ImportError:
        raise ValueError(
            f"{store.root}: suite {suite!r} has no language module envs.{suite}.language; "
            "use --language recorded"
        ) from None


def instruction_source(language: str, store: Any) -> Callable[[Mapping[str, Any]], str]:
    """info of an episode -> the instruction to feed for ``language`` (see the module doc)."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; valid: {', '.join(LANGUAGES)}")
    if language == "recorded":
        return lambda info: str(info.get("instruction", ""))
    lang = suite_language(store)
    tasks = list(lang.EVAL_INSTRUCTIONS)

    def task_of(info: Mapping[str, Any]) -> str:
        task = info.get("task")
        if task not in lang.EVAL_INSTRUCTIONS:
            raise ValueError(
                f"{store.root}: an episode's task {task!r} is not a task of envs.{store.env.get('suite')}"
                f".language, so it has no {language} phrasing; use --language recorded"
            )
        return str(task)

    if language == "eval":
        return lambda info: lang.eval_instruction(task_of(info))
    return lambda info: lang.train_instructions(
        tasks[(tasks.index(task_of(info)) + len(tasks) // 2) % len(tasks)]
    )[0]


def _observation(ep: Any, cams: Sequence[str], state_key: str | None, frame: int, t: int) -> dict:
    """Cameras of ``frame`` and (when the model reads it) the state of step ``t``."""
    obs = {c: np.array(ep.data[c][frame]) for c in cams}  # copies: stored arrays are read-only maps
    if state_key:
        obs[state_key] = np.array(ep.data[state_key][t])
    return obs


def recording(store: Any, episodes: Sequence[int], key: str, quantiles: Any) -> Recording:
    from trainer.data.preprocess import normalize_actions

    actions, tasks, near = [], [], []
    for e in episodes:
        raw = np.asarray(store.episode(e).data[key], dtype=np.float32)
        actions.append(normalize_actions(raw, quantiles))
        tasks += [str(store.episodes[e].get("task") or "")] * len(raw)
        near.append(near_switch(raw[:, 6]))
    return Recording(np.concatenate(actions), tasks, np.concatenate(near))


def score(predicted: np.ndarray, rec: Recording, probe: str, language: str, episodes: int) -> ReplayResult:
    """Compare (N, 7) normalised predictions with the recording."""
    per_dim = ((predicted[:, :6] - rec.actions[:, :6]) ** 2).mean(axis=0)
    hits = np.sign(predicted[:, 6]) == np.sign(rec.actions[:, 6])
    n_near = int(rec.near_switch.sum())
    return ReplayResult(
        probe,
        language,
        float(per_dim.mean()),
        [float(v) for v in per_dim],
        float(hits.mean()),
        float(hits[rec.near_switch].mean()) if n_near else None,
        len(hits),
        n_near,
        episodes,
    )


def predict(
    policy: Any,
    store: Any,
    episodes: Sequence[int],
    probe: str = "none",
    instruction_for: Callable[[Mapping[str, Any]], str] | None = None,
) -> np.ndarray:
    """(N, 7) normalised actions ``policy`` (a VLAPolicy in exec mode 'first') returns on every
    frame of ``episodes``.
    """
    from trainer.data.preprocess import normalize_actions

    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; valid: {', '.join(PROBES)}")
    if policy.mode != "chunk" or policy.k != 1:
        raise ValueError("replay compares every step: load the policy with exec mode 'first'")
    key, cams, state_key = policy.cfg.data.action_key, policy.cfg.model.cameras, policy.state_key
    if probe == "frozen_state" and not state_key:
        raise ValueError("probe 'frozen_state' needs a checkpoint that reads proprioception (state_key)")
    store.require(*cams, key, *([state_key] if state_key else []))
    instruction_for = instruction_for or (lambda info: str(info.get("instruction", "")))
    h = policy.history
    out = []
    for e in episodes:
        ep = store.episode(e)
        instruction = instruction_for(ep.info)
        policy.reset(instruction)
        for t in range(len(ep)):
            frame = 0 if probe == "first_frame" else t
            if probe == "frozen_state":  # rebuild the history: past frames, all with the current state
                policy.reset(instruction)
                for i in range(max(0, t - h + 1), t):
                    policy.act_batch([_observation(ep, cams, state_key, i, t)], [0])
            out.append(policy.act_batch([_observation(ep, cams, state_key, frame, t)], [0])[0])
    return normalize_actions(np.asarray(out, dtype=np.float32), policy.quantiles)


def replay(
    policy: Any, store: Any, episodes: Sequence[int], probe: str = "none", language: str = "recorded"
) -> ReplayResult:
    predicted = predict(policy, store, episodes, probe, instruction_source(language, store))
    rec = recording(store, episodes, policy.cfg.data.action_key, policy.quantiles)
    return score(predicted, rec, probe, language, len(episodes))


def baselines(
    store: Any, train_episodes: Sequence[int], rec: Recording, key: str, quantiles: Any, episodes: int
) -> list[ReplayResult]:
    """The training episodes' mean action, and each task's mean action over them, scored on ``rec``."""
    train = recording(store, train_episodes, key, quantiles)
    mean = train.actions.mean(axis=0)
    mean[6] = 1.0 if (train.actions[:, 6] > 0).mean() >= 0.5 else -1.0  # the majority command
    by_task = {}
    for task in set(rec.tasks):
        rows = np.array([t == task for t in train.tasks])
        if rows.any():
            m = train.actions[rows].mean(axis=0)
            m[6] = 1.0 if (train.actions[rows, 6] > 0).mean() >= 0.5 else -1.0
            by_task[task] = m
    constant = np.broadcast_to(mean, rec.actions.shape)
    per_task = np.stack([by_task.get(t, mean) for t in rec.tasks])
    return [
        score(constant, rec, "baseline", "mean", episodes),
        score(per_task, rec, "baseline", "task_mean", episodes),
    ]


def agreement(eval_pred: np.ndarray, recorded_pred: np.ndarray, wrong_pred: np.ndarray) -> int:
    """Frames on which the eval phrasing's arm prediction is nearer the recorded phrasing's than
    the wrong task's.
    """
    own = ((eval_pred[:, :6] - recorded_pred[:, :6]) ** 2).sum(axis=1)
    other = ((eval_pred[:, :6] - wrong_pred[:, :6]) ** 2).sum(axis=1)
    return int((own < other).sum())


def _row(r: ReplayResult) -> str:
    near = "-" if r.gripper_accuracy_near_switch is None else f"{r.gripper_accuracy_near_switch:.3f}"
    dims = "".join(f"{v:>8.4f}" for v in r.arm_mse_per_dim)
    return f"{r.probe:<13}{r.language:<10}{r.arm_mse:>9.4f}{dims}{r.gripper_accuracy:>10.3f}{near:>9}"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m trainer.replay", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="checkpoint folder (as for --policy vla:DIR)")
    parser.add_argument("--data", help="the episode store the run trained on (default: its data.path)")
    parser.add_argument(
        "--split", default="held_out", choices=SPLITS, help="episodes the run held out or trained on"
    )
    parser.add_argument(
        "--episodes", type=int, help="at most this many episodes, evenly spread (default: all)"
    )
    parser.add_argument("--language", nargs="+", default=["eval"], choices=LANGUAGES, help="instructions fed")
    parser.add_argument("--probes", nargs="+", default=["none"], choices=PROBES)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.episodes is not None and args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.json and Path(args.json).exists():
        parser.error(f"--json {args.json}: exists; choose a new file (results are never overwritten)")

    from policies.vla.policy import VLAPolicy
    from trainer.checkpoint import CheckpointError
    from trainer.data.store import DatasetError, EpisodeStore

    try:
        policy = VLAPolicy.from_checkpoint(args.checkpoint, exec_mode="first")
        trained_frames = read_json_object(Path(args.checkpoint) / "stats.json").get("n_frames")
        store = EpisodeStore(args.data or policy.cfg.data.path)
        chosen = replay_episodes(policy.cfg, trained_frames, store, args.split)
        episodes = spread(chosen, args.episodes or len(chosen))
        key = policy.cfg.data.action_key
        rec = recording(store, episodes, key, policy.quantiles)
        sources = {lang: instruction_source(lang, store) for lang in args.language}
        results, predictions = [], {}
        for probe in args.probes:
            for lang in args.language:
                predicted = predict(policy, store, episodes, probe, sources[lang])
                predictions[probe, lang] = predicted
                results.append(score(predicted, rec, probe, lang, len(episodes)))
        train_eps, _ = run_split(policy.cfg, trained_frames, store)
        base = baselines(store, train_eps, rec, key, policy.quantiles, len(episodes))
    except (ValueError, CheckpointError, DatasetError, FileNotFoundError) as exc:
        parser.error(str(exc))
    fraction = policy.cfg.data.val_fraction
    print(
        f"{args.split.replace('_', '-')} episodes: {len(episodes)} of {len(chosen)} (store {store.root}: "
        f"{len(store)} episodes, data.val_fraction {fraction}, train.seed {policy.cfg.train.seed}); "
        f"{rec.actions.shape[0]} steps, {int(rec.near_switch.sum())} within {NEAR_SWITCH} of a gripper switch"
    )
    dims = "".join(f"{d:>8}" for d in ("x", "y", "z", "roll", "pitch", "yaw"))
    print(f"{'probe':<13}{'language':<10}{'arm MSE':>9}{dims}{'grip acc':>10}{'near sw':>9}")
    for r in [*results, *base]:
        print(_row(r))
    report: dict[str, Any] = {
        "checkpoint": str(args.checkpoint),
        "data": str(store.root),
        "split": args.split,
        "episodes": episodes,
        "results": [asdict(r) for r in results],
        "baselines": [asdict(r) for r in base],
    }
    for probe in args.probes:
        if all((probe, lang) in predictions for lang in LANGUAGES):
            n = agreement(*(predictions[probe, lang] for lang in LANGUAGES))
            report.setdefault("eval_acts_like_own_task", {})[probe] = {"frames": n, "of": len(rec.tasks)}
            print(
                f"{probe}: the eval phrasing acts like its own task on {n} of {len(rec.tasks)} frames "
                "(its prediction nearer the recorded phrasing's than the wrong task's)"
            )
    if args.json:
        write_json_atomic(args.json, report)
    return report


if __name__ == "__main__":
    main()
