"""Does an unseen phrasing act like its own task? ``python -m trainer.language_probe [--steps 1500]``

The probe builds an episode store in which only the language tells the action: every task of the
CALVIN-style suite has its own constant action (plus a little noise) and the camera frames are
noise, each episode labelled with one of the task's recorded training phrasings. It trains the
default variant on it twice for the same number of steps, once with the language options
(paraphrases, word dropout) and once without, and replays its training episodes (2 to 3 per task)
through ``trainer.replay`` with each task's evaluation phrasing, its recorded phrasing and a wrong
task's phrasing. A policy whose language generalises has an evaluation-phrasing error close to the
recorded one and far from the wrong one. The model is cut down to what the question needs (one
history frame, the static camera at 16 px): 1500 steps take about 4 minutes on 2 busy cores with
``OMP_NUM_THREADS=1`` (more threads than free cores make every step several times slower).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = {
    "language options on": [],
    "paraphrases and word dropout off": ["data.word_dropout=0", "data.paraphrases=false"],
}
MODEL = [
    "model.history_length=1",
    "model.image_size=16",
    'model.cameras=["rgb_static"]',
    "data.num_workers=0",
    "train.batch_size=32",
    "train.val_every=100000",
    "data.val_fraction=0.1",
]


def language_only_store(root: Path, episodes_per_task: int = 3, frames: int = 10, seed: int = 0) -> Path:
    """An episode store whose actions depend on the task only (see the module doc)."""
    from envs.calvin.chains import TASKS
    from envs.calvin.language import TRAIN_INSTRUCTIONS
    from trainer.data.stats import compute_dataset_stats, write_stats
    from trainer.data.store import Episode, EpisodeStore, EpisodeWriter

    rng = np.random.default_rng(seed)
    target = {t: np.concatenate([rng.uniform(-0.8, 0.8, 6), [rng.choice([-1.0, 1.0])]]) for t in TASKS}
    writer = EpisodeWriter(root, env={"suite": "calvin", "probe": "language_only"})
    for _ in range(episodes_per_task):
        for task in TASKS:
            actions = np.tile(target[task], (frames, 1)).astype(np.float32)
            actions[:, :6] += rng.normal(0, 0.05, (frames, 6)).astype(np.float32)
            noise = rng.integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8)
            phrasings = TRAIN_INSTRUCTIONS[task]
            data = {
                "rgb_static": noise,
                "rgb_gripper": noise[:, :16, :16],
                "robot_obs": rng.normal(size=(frames, 15)).astype(np.float32),
                "rel_actions": actions,
                "actions": actions.copy(),
            }
            info = {"task": task, "instruction": phrasings[int(rng.integers(len(phrasings)))]}
            writer.add(Episode(data, info))
    write_stats(root, compute_dataset_stats(EpisodeStore(root)))
    return root


def run(out: Path, steps: int) -> dict[str, dict[str, Any]]:
    """Train both variants into ``out`` and replay them; returns trainer.replay's report per variant."""
    from trainer.replay import main as replay_main
    from trainer.train import main as train_main

    data = language_only_store(out / "data")
    reports = {}
    for i, (name, overrides) in enumerate(VARIANTS.items()):
        run_dir = out / f"run{i}"
        args = ["--config", "trainer/configs/base.json", f"data.path={data}", f"train.out={run_dir}"]
        args += [*MODEL, f"train.max_steps={steps}", f"train.save_every={steps}", *overrides]
        start = time.perf_counter()
        if train_main(args) != 0:
            raise SystemExit(f"trainer.language_probe: training {name!r} failed (see above)")
        print(f"{name}: {steps} steps in {time.perf_counter() - start:.0f} s")
        reports[name] = replay_main(
            [str(run_dir / "latest"), "--split", "train", "--language", "eval", "recorded", "wrong"]
            + ["--json", str(out / f"replay{i}.json")]
        )
    return reports


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.language_probe", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--steps", type=int, default=1500, help="optimiser steps of each run")
    parser.add_argument("--out", help="folder for the store, the runs and the replays (new)")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1, got {args.steps}")
    out = Path(args.out or f"runs/language_probe-{time.strftime('%Y%m%d-%H%M%S')}")
    if out.exists():
        parser.error(f"--out {out}: exists; choose a new folder (results are never overwritten)")
    reports = run(out, args.steps)
    print(f"\narm MSE on the training episodes, normalised units; {out}")
    print(f"{'variant':<36}{'eval':>8}{'recorded':>10}{'wrong':>8}  eval acts like its own task")
    for name, report in reports.items():
        mse = {r["language"]: r["arm_mse"] for r in report["results"]}
        agree = report["eval_acts_like_own_task"]["none"]
        print(
            f"{name:<36}{mse['eval']:>8.4f}{mse['recorded']:>10.4f}{mse['wrong']:>8.4f}"
            f"  {agree['frames']} of {agree['of']} frames"
        )
    return reports


if __name__ == "__main__":
    main()
