"""Proprioception fed to the action head, and the held-out validation loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.trainer_helpers import TINY, fixed_batch, make_tiny_data
from trainer.checkpoint import load_checkpoint
from trainer.config import ConfigError, load_config
from trainer.models.vla import ModelConfig, VLAModel
from trainer.tokenizer import train_tokenizer
from trainer.validation import frame_indices, split_episodes


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_data(tmp_path_factory.mktemp("data") / "store")


def fit(model: VLAModel, batch: dict, steps: int) -> dict[str, float]:
    """Adam at 3e-3 on one batch for ``steps`` steps; the last step's loss parts."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    parts: dict[str, float] = {}
    for _ in range(steps):
        loss, parts = model.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return parts


def test_split_episodes_is_seeded_disjoint_and_complete():
    train, val = split_episodes(40, 0.1, seed=3)
    assert len(val) == 4 and sorted(train + val) == list(range(40))
    assert split_episodes(40, 0.1, seed=3) == (train, val)
    assert split_episodes(40, 0.1, seed=4)[1] != val
    assert split_episodes(5, 0.0, seed=0) == ([0, 1, 2, 3, 4], [])
    assert len(split_episodes(2, 0.01, seed=0)[1]) == 1  # at least one held out
    assert len(split_episodes(2, 0.9, seed=0)[0]) == 1  # never all of them
    meta = [{"start": 0, "end": 3}, {"start": 3, "end": 5}, {"start": 5, "end": 9}]
    assert frame_indices(meta, [0, 2]) == [0, 1, 2, 5, 6, 7, 8]
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\)"):
        split_episodes(10, 1.0, seed=0)


def test_state_lets_the_head_fit_what_images_cannot_tell_apart():
    """Same images and instruction, opposite targets decided by the state: only a model that reads
    the state can fit both."""
    batch = fixed_batch()
    batch["observations"]["images"] = {
        k: v[:1].expand_as(v).clone() for k, v in batch["observations"]["images"].items()
    }
    batch["language_instruction"] = ["open the drawer"] * 2
    batch["history_mask"] = torch.ones(2, 2, dtype=torch.bool)
    batch["actions"][0, :, :, :6] = 0.8
    batch["actions"][1, :, :, :6] = -0.8
    states = torch.zeros(2, 2, 5)
    states[0, :, 0], states[1, :, 0] = 1.0, -1.0
    batch["observations"]["states"] = states

    def final_mse(state_key: str | None) -> float:
        torch.manual_seed(0)
        cfg = ModelConfig(
            backbone="kosmos",
            structure="policy_head_continuous",
            head="fc",
            image_size=32,
            history_length=2,
            action_chunk_size=3,
            state_key=state_key,
            state_dim=5 if state_key else 0,
        )
        return fit(VLAModel(cfg, train_tokenizer()), batch, 60)["loss_arm_mse"]

    without, with_state = final_mse(None), final_mse("robot_obs")
    assert without > 0.5  # the best it can do is the mean (0): MSE 0.64
    assert with_state < 0.1 * without, (with_state, without)


def test_state_statistics_are_checked():
    model = VLAModel(
        ModelConfig(backbone="kosmos", image_size=32, state_key="robot_obs", state_dim=3), train_tokenizer()
    )
    model.set_state_stats([1.0, 2.0, 3.0], [0.5, 0.0, 2.0])
    assert model.state_mean.tolist() == [1.0, 2.0, 3.0]
    torch.testing.assert_close(model.state_std, torch.tensor([0.5, 1e-3, 2.0]))  # a constant dim stays finite
    with pytest.raises(ValueError, match=r"state statistics have \(2,\)/\(2,\) dims, the model expects 3"):
        model.set_state_stats([0.0, 0.0], [1.0, 1.0])
    batch = fixed_batch()
    del batch["observations"]["states"]
    with pytest.raises(ValueError, match="batch lacks observations.states"):
        model.compute_loss(batch)
    batch["observations"]["states"] = torch.zeros(2, 2, 4)
    with pytest.raises(ValueError, match="observations.states has 4 dims, the model expects 3"):
        model.compute_loss(batch)


def test_state_dims_pick_what_the_head_reads():
    torch.manual_seed(0)
    cfg = ModelConfig(
        backbone="kosmos",
        image_size=32,
        head="fc",
        history_length=2,
        state_key="robot_obs",
        state_dim=3,
        state_dims=[1],
    )
    model = VLAModel(cfg, train_tokenizer()).eval()
    batch = fixed_batch()
    batch["observations"]["states"] = torch.zeros(2, 2, 3)
    base = model.predict(batch)[..., :6]
    batch["observations"]["states"][..., 0] = 5.0  # left out: no effect
    torch.testing.assert_close(model.predict(batch)[..., :6], base)
    batch["observations"]["states"][..., 1] = 5.0
    assert not torch.allclose(model.predict(batch)[..., :6], base)
    with pytest.raises(
        ValueError, match=r"model.state_dims = \[3\] must be a non-empty list of indices in 0..2"
    ):
        VLAModel(
            ModelConfig(backbone="kosmos", image_size=32, state_key="robot_obs", state_dim=3, state_dims=[3]),
            train_tokenizer(),
        )


@pytest.mark.slow
def test_discrete_structure_reads_the_state_as_prompt_tokens():
    """The discrete structure has no head: the current state enters the prompt as one token per
    read entry, and with it the model fits targets that the images and the instruction cannot tell
    apart; swapping the states swaps its actions."""
    batch = fixed_batch()
    batch["observations"]["images"] = {
        k: v[:1].expand_as(v).clone() for k, v in batch["observations"]["images"].items()
    }
    batch["language_instruction"] = ["open the drawer"] * 2
    batch["actions"][0, :, :, :6] = 0.8
    batch["actions"][1, :, :, :6] = -0.8
    batch["actions"][..., 6] = 1.0
    states = torch.zeros(2, 2, 5)
    states[0, -1, 0], states[1, -1, 0] = 1.0, -1.0  # only the current step differs
    batch["observations"]["states"] = states
    torch.manual_seed(0)
    cfg = ModelConfig(
        backbone="kosmos",
        structure="one_step_discrete",
        image_size=32,
        history_length=2,
        action_chunk_size=1,
        state_key="robot_obs",
        state_dim=5,
        state_dims=[0, 1],
    )
    model = VLAModel(cfg, train_tokenizer())
    prefixes, _ = model._discrete_prefix(batch)
    lo = model.action_ids[0]
    assert sum(t >= lo for t in prefixes[0]) == 2  # one state token per read entry
    assert prefixes[0][:-3] == prefixes[1][:-3] and prefixes[0][-3] != prefixes[1][-3]
    fit(model, batch, 80)
    model.eval()
    arm = model.predict(batch, n_actions=1)[:, 0, :6]
    assert bool((arm[0] > 0.5).all()) and bool((arm[1] < -0.5).all()), arm
    batch["observations"]["states"] = states.flip(0)
    swapped = model.predict(batch, n_actions=1)[:, 0, :6]
    torch.testing.assert_close(swapped, arm.flip(0))


def test_config_errors_for_state_and_validation():
    cfg = load_config("trainer/configs/kosmos_os_disc.json", ["model.state_key=robot_obs"])
    assert cfg.model.state_key == "robot_obs"  # the discrete structure reads state tokens
    with pytest.raises(ConfigError, match=r"data.val_fraction must be in \[0, 1\), got 1.5"):
        load_config(None, ["data.val_fraction=1.5"])
    with pytest.raises(ConfigError, match="train.val_every must be >= 1"):
        load_config(None, ["train.val_every=0"])


def test_training_with_state_and_validation_then_a_chain(tiny_data, tmp_path, capsys):
    from bench.run import main as run_main
    from trainer.train import main as train_main

    out = tmp_path / "ck"
    args = ["--config", "trainer/configs/kosmos_ph_lstm.json", f"data.path={tiny_data}", *TINY]
    extra = ["model.state_key=robot_obs", "data.val_fraction=0.5", "train.val_every=1", "train.val_samples=4"]
    assert train_main([*args, f"train.out={out}", *extra]) == 0
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    val = [r for r in log if "val_loss" in r]
    assert [r["step"] for r in val] == [1, 2]
    assert all(np.isfinite(r["val_loss"]) and "val_loss_arm_mse" in r for r in val)
    model, cfg, _, stats = load_checkpoint(out / "latest")
    assert cfg.model.state_key == "robot_obs" and cfg.model.state_dim == 15
    np.testing.assert_allclose(model.state_mean.numpy(), stats["robot_obs"]["mean"], rtol=1e-6)

    run = tmp_path / "run"
    argv = ["--policy", f"vla:{out / 'latest'}", "--chains", "1", "--max-steps", "3"]
    argv += ["--static-size", "24", "--gripper-size", "16", "--quiet", "--out", str(run)]
    assert run_main(argv) == 0
    record = json.loads((run / "episodes.jsonl").read_text())
    assert record["steps"][0] == 3 and not record["stop_reason"].startswith("error")

    assert train_main([*args, f"train.out={tmp_path / 'bad'}", "model.state_key=joint_angles"]) == 2
    assert "model.state_key = 'joint_angles'" in capsys.readouterr().err
    assert train_main([*args, f"train.out={tmp_path / 'bad2'}", *extra, "model.state_dims=[0, 15]"]) == 2
    assert "model.state_dims = [0, 15]: indices must lie in 0..14" in capsys.readouterr().err


def test_policy_says_when_the_observation_lacks_the_state(tiny_data, tmp_path):
    from policies.vla.policy import VLAPolicy
    from trainer.train import main as train_main

    out = tmp_path / "ck"
    args = ["--config", "trainer/configs/kosmos_ph_fc.json", f"data.path={tiny_data}", f"train.out={out}"]
    assert train_main([*args, *TINY, "model.state_key=robot_obs"]) == 0
    policy = VLAPolicy.from_checkpoint(str(out / "latest"))
    policy.reset("open the drawer")
    obs = {"rgb_static": np.zeros((24, 24, 3), np.uint8), "rgb_gripper": np.zeros((16, 16, 3), np.uint8)}
    with pytest.raises(ValueError, match="observation lacks 'robot_obs', which the model reads"):
        policy.act_batch([obs], [0])
    action = policy.act_batch([{**obs, "robot_obs": np.zeros(15, np.float32)}], [0])
    assert action.shape == (1, 7) and np.isfinite(action).all()
