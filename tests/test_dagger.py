"""DAgger end to end (roll-out with a VLA checkpoint, expert labels, retraining, resume) and the
trainer options it rests on: ``data.extra_paths`` and ``train.init``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import trainer.collect
import trainer.train
from tests.test_collect import OBS_KEYS, labels_from, replay_expert
from tests.trainer_helpers import TINY, make_tiny_data
from trainer.collect import CollectArgs, collect
from trainer.dagger import main as dagger_main
from trainer.data.store import EpisodeStore
from trainer.recorder import absolute_from_relative, policy_turns
from trainer.train import main as train_main

BASE = "trainer/configs/base.json"
TASKS = ["open_drawer", "turn_on_led"]
TRAIN = [*(o for o in TINY if not o.startswith("train.max_steps")), "train.max_steps=3", "train.save_every=1"]


@pytest.fixture(scope="module")
def expert_and_init(tmp_path_factory) -> tuple[Path, Path]:
    """A 2-episode expert store at 16 px and a tiny checkpoint trained on it for 2 steps."""
    root = tmp_path_factory.mktemp("dagger")
    data = root / "expert"
    collect(
        CollectArgs(
            out=str(data),
            scenes=["D"],
            episodes=2,
            tasks=TASKS,
            static_size=16,
            gripper_size=16,
            chain_pool=200,
            quiet=True,
        )
    )
    assert train_main(["--config", BASE, f"data.path={data}", f"train.out={root / 'init'}", *TINY]) == 0
    return data, root / "init" / "latest"


def _argv(data: Path, init: Path, out: Path, *extra: str) -> list[str]:
    return [
        *("--out", str(out), "--data", str(data), "--init", str(init), "--rounds", "1", "--episodes", "2"),
        *("--beta", "0.5", "--scenes", "D", "--tasks", *TASKS, "--chain-pool", "200", "--max-steps", "200"),
        "--quiet",
        *extra,
        *TRAIN,
    ]


def _log_steps(folder: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (folder / "train_log.jsonl").read_text().splitlines()]


def test_dagger_round_relabels_retrains_and_resumes(expert_and_init, tmp_path, monkeypatch, capsys):
    data, init = expert_and_init
    out = tmp_path / "dagger"
    argv = _argv(data, init, out)

    # an interruption in the round's training (after its checkpoint of step 1) ...
    real_log = trainer.train.Logger.log

    def interrupted(self, step, scalars):
        if step == 2:
            raise KeyboardInterrupt
        real_log(self, step, scalars)

    monkeypatch.setattr(trainer.train.Logger, "log", interrupted)
    assert dagger_main(argv) == 130
    rec = json.loads((out / "dagger.json").read_text())["rounds"][0]
    assert rec["collected"] and not rec.get("trained")
    monkeypatch.undo()

    # ... resumes that training from its checkpoint, without collecting again
    def no_collect(args):
        raise AssertionError("a finished collection ran again")

    monkeypatch.setattr("trainer.collect.collect", no_collect)
    assert dagger_main(argv) == 0
    train_dir = out / "round_0" / "train"
    assert _log_steps(train_dir) == [1, 2, 3]
    state = json.loads((out / "dagger.json").read_text())
    rec = state["rounds"][0]
    assert rec["trained"] and rec["step"] == 3 and rec["checkpoint"] == str((train_dir / "latest").resolve())
    assert rec["beta"] == 0.5 and rec["stored"] == 2 and rec["policy"] == str(init.resolve())
    cfg = json.loads((train_dir / "latest" / "config.json").read_text())
    assert cfg["data"]["path"] == str(data.resolve())
    assert cfg["data"]["extra_paths"] == [str((out / "round_0" / "data").resolve())]
    assert cfg["train"]["init"] == str(init.resolve())

    # the stored labels are the expert's, from the targets that the policy's turns left the env in
    from envs.calvin.robot import WORKSPACE_HIGH, WORKSPACE_LOW
    from policies.registry import make_policy

    store = EpisodeStore(out / "round_0" / "data")
    assert store.env["collector"]["policy_provenance"]["checkpoint"] == str(init.resolve())
    policy = make_policy(f"vla:{init}")
    frames = sum(ep["end"] - ep["start"] for ep in store.episodes)
    assert rec["policy_fraction"] == sum(ep["policy_steps"] for ep in store.episodes) / frames
    assert 0.2 < rec["policy_fraction"] < 0.8
    for i, info in enumerate(store.episodes):
        ep = store.episode(i).data
        n = len(ep["actions"])
        turns = policy_turns(rec["seed"], info["slot"], 0.5, n)
        assert info["policy_steps"] == turns.sum()
        policy.reset(
            info["instruction"], slot=0, info={"suite": "calvin", "task": info["task"], "scene": "D"}
        )
        targets = [np.asarray(info["start_target"])]
        for t in range(n - 1):
            proposal = policy.act({k: np.array(ep[k][t]) for k in OBS_KEYS})
            target = absolute_from_relative(proposal, targets[-1])[:6] if turns[t] else ep["actions"][t, :6]
            target = np.array(target, dtype=np.float64)
            target[:3] = np.clip(target[:3], WORKSPACE_LOW, WORKSPACE_HIGH)
            targets.append(target)
        np.testing.assert_allclose(
            labels_from(np.array(targets), ep["actions"]), ep["rel_actions"], atol=1e-4
        )
        np.testing.assert_allclose(replay_expert(ep, info), ep["actions"], atol=1e-6)

    # a finished run is skipped as a whole; another setting is refused, naming it
    before = (out / "dagger.json").read_bytes()
    monkeypatch.setattr("trainer.train.train", lambda *a, **k: pytest.fail("a finished training ran again"))
    assert dagger_main(argv) == 0
    assert (out / "dagger.json").read_bytes() == before
    capsys.readouterr()
    assert dagger_main(_argv(data, init, out, "--beta-decay", "0.9")) == 2
    assert "beta_decay: ours 0.9, stored 0.5" in capsys.readouterr().err
    assert dagger_main(_argv(data, init, out)[:-1] + ["train.save_every=2"]) == 2
    assert "train_config.train.save_every: ours 2, stored 1" in capsys.readouterr().err
    assert dagger_main(_argv(data, init, data)) == 2  # a folder that is not a DAgger run is never written
    assert "holds" in capsys.readouterr().err and not (data / "dagger.json").exists()
    assert dagger_main(_argv(data, init, tmp_path / "x", "data.path=elsewhere")) == 2
    assert (
        "trainer.dagger sets data.path, data.extra_paths, train.out, train.init itself"
        in capsys.readouterr().err
    )


def test_extra_data_is_trained_on_in_every_round_and_is_a_setting(expert_and_init, tmp_path, capsys):
    """--extra-data (e.g. an earlier run's round stores) joins every round's training data, and is
    part of the settings a resumed run must share; a missing folder is refused before anything runs."""
    import shutil

    data, init = expert_and_init
    earlier = tmp_path / "earlier_round"
    shutil.copytree(data, earlier)  # stands in for an earlier DAgger run's round_K/data
    out = tmp_path / "dagger"
    assert dagger_main(["--extra-data", str(earlier), *_argv(data, init, out)]) == 0
    cfg = json.loads((out / "round_0" / "train" / "latest" / "config.json").read_text())
    assert cfg["data"]["extra_paths"] == [str(earlier.resolve()), str((out / "round_0" / "data").resolve())]
    assert json.loads((out / "dagger.json").read_text())["settings"]["extra_data"] == [str(earlier.resolve())]
    capsys.readouterr()
    assert dagger_main(_argv(data, init, out)) == 2
    assert f"extra_data: ours [], stored [{json.dumps(str(earlier.resolve()))}]" in capsys.readouterr().err
    assert dagger_main(["--extra-data", str(tmp_path / "nope"), *_argv(data, init, tmp_path / "new")]) == 2
    assert f"--extra-data {tmp_path / 'nope'}: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_env_reaches_the_roll_outs_and_is_a_setting(expert_and_init, tmp_path, monkeypatch, capsys):
    """--env picks the roll-outs' play table (trainer.collect --env); a run started without it resumes
    as ``ours``; CALVIN's env without a checkout is one line before anything is written."""
    data, init = expert_and_init
    seen = []
    real_collect = trainer.collect.collect

    def recording(cargs):
        seen.append(cargs.env)
        return real_collect(cargs)

    monkeypatch.setattr("trainer.collect.collect", recording)
    out = tmp_path / "dagger"
    assert dagger_main(["--env", "ours", *_argv(data, init, out)]) == 0
    assert seen == ["ours"] and json.loads((out / "dagger.json").read_text())["settings"]["env"] == "ours"
    state = json.loads((out / "dagger.json").read_text())
    del state["settings"]["env"]  # as a run from before --env left it
    (out / "dagger.json").write_text(json.dumps(state))
    assert dagger_main([*_argv(data, init, out)]) == 0  # resumes: nothing left to do
    monkeypatch.setenv("CALVIN_ENV_DIR", str(tmp_path / "no_checkout"))
    capsys.readouterr()
    assert dagger_main(["--env", "calvin_env", *_argv(data, init, tmp_path / "new")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--env calvin_env" in err and "git clone" in err
    assert not (tmp_path / "new").exists()


def test_extra_paths_must_match_data_path(expert_and_init, tmp_path, capsys):
    data, _ = expert_and_init
    other = make_tiny_data(tmp_path / "tiny")  # 24 px static images, no scene_obs
    base = ["--config", BASE, f"data.path={data}", f"train.out={tmp_path / 'run'}", *TINY]
    assert train_main([*base, f'data.extra_paths=["{other}"]']) == 2
    err = capsys.readouterr().err
    assert (
        f"{other}: field 'rgb_static' is |u1 [24, 24, 3], but data.path {data} holds |u1 [16, 16, 3]" in err
    )
    assert train_main([*base, f"data.extra_paths={other}"]) == 2
    assert 'data.extra_paths must be list[str], got "' in capsys.readouterr().err
    assert train_main([*base, f'data.extra_paths=["{data}"]']) == 2
    assert f"data.extra_paths: {data} is listed twice (or is data.path)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_init_starts_from_the_weights_with_a_fresh_optimiser(expert_and_init, tmp_path, capsys):
    from safetensors.numpy import load_file

    data, init = expert_and_init
    base = ["--config", BASE, f"data.path={data}", f"train.init={init}", *TINY]
    assert train_main([*base, f"train.out={tmp_path / 'bad'}", "model.head_hidden=16"]) == 2
    err = capsys.readouterr().err
    assert (
        f"train.init = {init}: the checkpoint's architecture differs (model.head_hidden: ours 16, checkpoint 32)"
        in err
    )
    assert not (tmp_path / "bad").exists()
    # lr 0: the weights stay the init's; the step count starts again (the init's run ended at step 2)
    assert train_main([*base, f"train.out={tmp_path / 'run'}", "optim.lr=0", "train.max_steps=1"]) == 0
    ours, theirs = load_file(tmp_path / "run/latest/model.safetensors"), load_file(init / "model.safetensors")
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])
    assert _log_steps(tmp_path / "run") == [1]
    assert (tmp_path / "run/latest/tokenizer.json").read_text() == (init / "tokenizer.json").read_text()


def test_each_store_holds_out_its_own_episodes(expert_and_init, tmp_path):
    """Held-out episodes of several stores: each store's own seeded choice, as if trained on alone."""
    from trainer.data.dataset import DemoDataset, SampleConfig
    from trainer.train import split_datasets

    cfg = SampleConfig(history_length=2, action_chunk_size=3, image_keys=(), state_key=None)
    first = DemoDataset(make_tiny_data(tmp_path / "tiny"), cfg)
    second = DemoDataset(expert_and_init[0], cfg, first.quantiles)
    train_set, val = split_datasets([first, second], 0.5, seed=1)
    alone = [split_datasets([d], 0.5, seed=1)[1] for d in (first, second)]
    assert alone[0] and alone[1]
    assert val == alone[0] + [len(first) + i for i in alone[1]]
    assert len(train_set) == len(first) + len(second) - len(val)
    for offset, part in zip((0, len(first)), train_set.datasets, strict=True):  # no held-out frame trains
        assert not set(val) & {offset + i for i in part.indices}
