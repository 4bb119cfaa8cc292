"""trainer.replay: held-out episodes through a policy, step-aligned, with languages, probes and baselines."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from envs.calvin.language import EVAL_INSTRUCTIONS, TRAIN_INSTRUCTIONS
from tests.trainer_helpers import TINY, make_tiny_data
from trainer.data.store import EpisodeStore, EpisodeWriter
from trainer.replay import (
    agreement,
    baselines,
    instruction_source,
    near_switch,
    recording,
    replay,
    replay_episodes,
    spread,
)
from trainer.replay import (
    main as replay_main,
)
from trainer.validation import split_episodes


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_data(tmp_path_factory.mktemp("data") / "store")


@pytest.fixture(scope="module")
def state_checkpoint(tiny_data, tmp_path_factory) -> Path:
    """A run that held one of the two episodes out and reads proprioception."""
    from trainer.train import main as train_main

    out = tmp_path_factory.mktemp("ck")
    # PaliGemma hands every patch token to the LM, so a few steps leave the actions image-dependent
    # (the frame probes need that); a tiny Kosmos with proprioception can come out blind.
    args = [
        "--config",
        "trainer/configs/paligemma_ph_lstm.json",
        f"data.path={tiny_data}",
        f"train.out={out}",
    ]
    assert train_main([*args, *TINY, "model.state_key=robot_obs", "data.val_fraction=0.5"]) == 0
    return out / "latest"


class Oracle:
    """Returns the recorded action of the frame whose (unique) robot_obs it is shown."""

    mode, k, history, state_key = "chunk", 1, 2, "robot_obs"

    def __init__(self, store: EpisodeStore) -> None:
        from trainer.data.stats import quantiles_from_stats, read_stats

        self.cfg = SimpleNamespace(
            data=SimpleNamespace(action_key="rel_actions"),
            model=SimpleNamespace(cameras=["rgb_static", "rgb_gripper"]),
        )
        self.quantiles = quantiles_from_stats(read_stats(store.root), field="rel_actions")
        self.table = {}
        for i in range(len(store)):
            ep = store.episode(i)
            for t in range(len(ep)):
                self.table[ep.data["robot_obs"][t].tobytes()] = ep.data["rel_actions"][t]
        self.calls = 0
        self.instructions: list[str] = []

    def reset(self, instruction: str, **_: object) -> None:
        self.instructions.append(instruction)

    def act_batch(self, observations, slots) -> np.ndarray:
        self.calls += 1
        return np.stack([self.table[o["robot_obs"].tobytes()] for o in observations])


def _run_cfg(val_fraction: float, seed: int = 0, path: str = "data/x") -> SimpleNamespace:
    return SimpleNamespace(
        data=SimpleNamespace(val_fraction=val_fraction, path=path), train=SimpleNamespace(seed=seed)
    )


def test_replay_compares_each_step_with_its_own_recorded_action(tiny_data):
    store = EpisodeStore(tiny_data)
    oracle = Oracle(store)
    result = replay(oracle, store, [0, 1])
    assert result.steps == store.n_frames == 11 and result.episodes == 2
    assert result.arm_mse == 0.0 and result.arm_mse_per_dim == [0.0] * 6
    assert result.gripper_accuracy == 1.0 and result.gripper_accuracy_near_switch == 1.0
    assert oracle.instructions == [store.episodes[0]["instruction"], store.episodes[1]["instruction"]]
    # frozen_state feeds the current state with every past frame: the oracle sees one state per step
    oracle.calls = 0
    frozen = replay(oracle, store, [0, 1], probe="frozen_state")
    assert frozen.arm_mse == 0.0 and oracle.calls == 11 + 9  # history 2: one extra call past frame 0


def test_languages_feed_the_eval_the_recorded_or_a_wrong_tasks_phrasing(tiny_data):
    store = EpisodeStore(tiny_data)
    info = store.episodes[0]  # open_drawer
    assert instruction_source("recorded", store)(info) == info["instruction"]
    assert instruction_source("eval", store)(info) == EVAL_INSTRUCTIONS["open_drawer"]
    wrong = instruction_source("wrong", store)(info)
    assert wrong in TRAIN_INSTRUCTIONS["push_into_drawer"]  # half the task list away
    oracle = Oracle(store)
    replay(oracle, store, [0, 1], language="eval")
    assert oracle.instructions == [EVAL_INSTRUCTIONS["open_drawer"], EVAL_INSTRUCTIONS["turn_on_led"]]
    with pytest.raises(ValueError, match="task 'wave' is not a task of envs.calvin.language"):
        instruction_source("eval", store)({"task": "wave", "instruction": "wave"})
    with pytest.raises(ValueError, match="unknown language 'french'; valid: eval, recorded, wrong"):
        instruction_source("french", store)


def test_near_switch_marks_frames_around_a_gripper_change():
    g = np.array([1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1], dtype=np.float32)
    assert near_switch(g).tolist() == [False] * 2 + [True] * 7 + [False] * 4  # switch at frame 5, +-3
    assert not near_switch(np.ones(5)).any()


def test_replay_uses_the_runs_own_held_out_episodes(tiny_data):
    store = EpisodeStore(tiny_data)
    train, held = split_episodes(2, 0.5, 3)
    assert replay_episodes(_run_cfg(0.5, seed=3), store.n_frames, store) == held
    assert replay_episodes(_run_cfg(0.5, seed=3), store.n_frames, store, "train") == train
    assert not set(held) & set(train)
    with pytest.raises(ValueError, match=r"held no episodes out \(data.val_fraction = 0.0\).*--split train"):
        replay_episodes(_run_cfg(0.0), store.n_frames, store)
    with pytest.raises(ValueError, match="holds 11 frames, the run's training data held 12"):
        replay_episodes(_run_cfg(0.5), 12, store)
    with pytest.raises(ValueError, match="unknown split 'all'"):
        replay_episodes(_run_cfg(0.5), 11, store, "all")


def test_baselines_are_the_training_episodes_mean_and_each_tasks_mean(tiny_data):
    store = EpisodeStore(tiny_data)
    quantiles = Oracle(store).quantiles
    rec = recording(store, [1], "rel_actions", quantiles)
    train = recording(store, [0], "rel_actions", quantiles)
    mean, per_task = baselines(store, [0], rec, "rel_actions", quantiles, 1)
    expected = ((rec.actions[:, :6] - train.actions[:, :6].mean(axis=0)) ** 2).mean()
    assert mean.language == "mean" and mean.arm_mse == pytest.approx(expected, rel=1e-5)
    assert per_task.arm_mse == pytest.approx(expected, rel=1e-5)  # task of episode 1 not in training
    own = baselines(store, [0, 1], rec, "rel_actions", quantiles, 1)[1]
    assert own.arm_mse < mean.arm_mse  # its own task's mean fits it better
    assert agreement(np.zeros((3, 7)), np.zeros((3, 7)), np.ones((3, 7))) == 3


def test_main_reports_languages_baselines_and_agreement(state_checkpoint, tiny_data, tmp_path, capsys):
    out = tmp_path / "replay.json"
    report = replay_main(
        [str(state_checkpoint), "--data", str(tiny_data), "--language", "eval", "recorded", "wrong"]
        + ["--probes", "none", "first_frame", "--json", str(out)]
    )
    held = split_episodes(2, 0.5, 0)[1]
    assert report["episodes"] == held and report["split"] == "held_out"
    steps = sum(len(EpisodeStore(tiny_data).episode(e)) for e in held)
    rows = {(r["probe"], r["language"]): r for r in report["results"]}
    assert set(rows) == {(p, lang) for p in ("none", "first_frame") for lang in ("eval", "recorded", "wrong")}
    assert all(r["steps"] == steps and len(r["arm_mse_per_dim"]) == 6 for r in rows.values())
    assert rows["none", "eval"]["arm_mse"] != rows["none", "wrong"]["arm_mse"]  # the language matters
    assert rows["first_frame", "eval"]["arm_mse"] != rows["none", "eval"]["arm_mse"]  # it looks
    assert [b["language"] for b in report["baselines"]] == ["mean", "task_mean"]
    assert 0 <= report["eval_acts_like_own_task"]["none"]["frames"] <= steps
    printed = capsys.readouterr().out
    assert "held-out episodes: 1 of 1" in printed and "acts like its own task" in printed
    assert json.loads(out.read_text()) == report
    with pytest.raises(SystemExit):  # an existing results file is never overwritten
        replay_main([str(state_checkpoint), "--data", str(tiny_data), "--json", str(out)])


def test_replay_says_what_is_wrong(state_checkpoint, tiny_data, tmp_path, capsys):
    from policies.vla.policy import VLAPolicy

    store = EpisodeStore(tiny_data)
    with pytest.raises(ValueError, match="exec mode 'first'"):
        replay(VLAPolicy.from_checkpoint(str(state_checkpoint), exec_mode="chunk:2"), store, [0])
    policy = VLAPolicy.from_checkpoint(str(state_checkpoint))
    with pytest.raises(ValueError, match="unknown probe 'blind'; valid: none, first_frame, frozen_state"):
        replay(policy, store, [0], probe="blind")
    blind = Oracle(store)
    blind.state_key = None
    with pytest.raises(ValueError, match="needs a checkpoint that reads proprioception"):
        replay(blind, store, [0], probe="frozen_state")
    with pytest.raises(SystemExit):
        replay_main([str(state_checkpoint), "--data", str(tiny_data), "--episodes", "0"])
    other = tmp_path / "other"  # a store with more frames than the run's training data
    writer = EpisodeWriter(other, env={"suite": "calvin"})
    for i in range(3):
        writer.add(store.episode(i % 2))
    capsys.readouterr()
    with pytest.raises(SystemExit):
        replay_main([str(state_checkpoint), "--data", str(other)])
    assert "holds 17 frames, the run's training data held 11" in capsys.readouterr().err
    assert spread([0, 1, 2, 3, 4], 3) == [0, 2, 4] and spread([7, 9], 5) == [7, 9]
