"""Offline replay: how well a checkpoint predicts recorded demonstrations, and what it reads.

``python -m bench.replay CHECKPOINT --data DIR [--episodes 12] [--probes none first_frame frozen_state]``

Every frame of some recorded episodes goes to the VLA policy exactly as a live observation would
(history buffers, resizing, denormalisation, re-query every step), and the action it returns is
compared with the recorded one: arm MSE in normalised units ([-1, 1] per dimension) and the share
of steps with the right gripper command. A low replay error with a low closed-loop success says the
gap lies in closed loop, not in the inference pipeline.

Probes change what the policy sees, to find what its actions depend on:

- ``none``: the recording as it is;
- ``first_frame``: every camera shows the episode's first frame throughout (does it look?);
- ``frozen_state``: the proprioception history is the current state repeated (does it read the
  arm's motion from the state history?); only for checkpoints that read a state (``state_key``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

PROBES = ("none", "first_frame", "frozen_state")


@dataclass
class ReplayResult:
    probe: str
    arm_mse: float
    """mean squared error of the 6 arm dims, normalised units"""
    gripper_accuracy: float
    """share of steps whose gripper sign matches the recording"""
    steps: int
    episodes: int


def spread(n_total: int, n: int) -> list[int]:
    """``n`` episode indices evenly spread over ``0..n_total-1`` (all of them if n >= n_total)."""
    if n_total < 1:
        raise ValueError("the dataset holds no episodes")
    if n >= n_total:
        return list(range(n_total))
    return [int(i) for i in np.linspace(0, n_total - 1, n).round()]


def _observation(ep: Any, cams: Sequence[str], state_key: str | None, frame: int, t: int) -> dict:
    """Cameras of ``frame`` and (when the model reads it) the state of step ``t``."""
    obs = {c: np.array(ep.data[c][frame]) for c in cams}  # copies: stored arrays are read-only maps
    if state_key:
        obs[state_key] = np.array(ep.data[state_key][t])
    return obs


def replay(policy: Any, store: Any, episodes: Sequence[int], probe: str = "none") -> ReplayResult:
    """Replays ``episodes`` of ``store`` (an EpisodeStore) through ``policy`` (a VLAPolicy)."""
    from trainer.data.preprocess import normalize_actions

    if probe not in PROBES:
        raise ValueError(f"unknown probe {probe!r}; valid: {', '.join(PROBES)}")
    if policy.mode != "chunk" or policy.k != 1:
        raise ValueError("replay compares every step: load the policy with exec mode 'first'")
    key, cams, state_key = policy.cfg.data.action_key, policy.cfg.model.cameras, policy.state_key
    if probe == "frozen_state" and not state_key:
        raise ValueError("probe 'frozen_state' needs a checkpoint that reads proprioception (state_key)")
    needed = [*cams, key] + ([state_key] if state_key else [])
    store.require(*needed)
    h = policy.history
    errors, hits = [], []
    for e in episodes:
        ep = store.episode(e)
        instruction = ep.info.get("instruction", "")
        policy.reset(instruction)
        for t in range(len(ep)):
            frame = 0 if probe == "first_frame" else t
            if probe == "frozen_state":  # rebuild the history: past frames, all with the current state
                policy.reset(instruction)
                for i in range(max(0, t - h + 1), t):
                    policy.act_batch([_observation(ep, cams, state_key, i, t)], [0])
            action = policy.act_batch([_observation(ep, cams, state_key, frame, t)], [0])[0]
            predicted = normalize_actions(action[None], policy.quantiles)[0]
            recorded = np.asarray(ep.data[key][t], dtype=np.float32)
            target = normalize_actions(recorded[None], policy.quantiles)[0]
            errors.append(float(((predicted[:6] - target[:6]) ** 2).mean()))
            hits.append(bool(np.sign(action[6]) == np.sign(recorded[6])))
    return ReplayResult(probe, float(np.mean(errors)), float(np.mean(hits)), len(errors), len(episodes))


def main(argv: Sequence[str] | None = None) -> list[ReplayResult]:
    parser = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", help="checkpoint folder (as for --policy vla:DIR)")
    parser.add_argument("--data", required=True, help="episode store with recorded demonstrations")
    parser.add_argument("--episodes", type=int, default=12, help="episodes, evenly spread over the store")
    parser.add_argument("--probes", nargs="+", default=["none", "first_frame"], choices=PROBES)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")

    from policies.vla.policy import VLAPolicy
    from trainer.data.store import EpisodeStore

    policy = VLAPolicy.from_checkpoint(args.checkpoint, exec_mode="first")
    store = EpisodeStore(args.data)
    episodes = spread(len(store), args.episodes)
    try:
        results = [replay(policy, store, episodes, probe) for probe in args.probes]
    except ValueError as exc:  # a probe the checkpoint cannot take, a store without its fields
        parser.error(str(exc))
    print(f"{'probe':<14}{'arm MSE':>10}{'gripper acc':>13}{'steps':>8}")
    for r in results:
        print(f"{r.probe:<14}{r.arm_mse:>10.4f}{r.gripper_accuracy:>13.3f}{r.steps:>8}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in results], f, indent=2)
    return results


if __name__ == "__main__":
    main()
