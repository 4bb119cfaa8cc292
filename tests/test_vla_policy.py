"""The VLA policy: cached per-frame features give the actions of a full recomputation, camera sizes
are declared from the checkpoint and checked, and the shift padding scales per camera."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from policies.vla import VLAPolicy
from trainer.config import load_config
from trainer.data.augment import AugmentConfig
from trainer.data.dataset import scaled_shift_pads
from trainer.models.vla import VLAModel
from trainer.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "results" / "checkpoints" / "paligemma_ph_lstm_tiny_abc"
STATS = {"rel_actions": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}


def _obs(rng: np.random.Generator, static: int = 24, gripper: int = 16) -> dict:
    return {
        "rgb_static": rng.integers(0, 256, (static, static, 3), dtype=np.uint8),
        "rgb_gripper": rng.integers(0, 256, (gripper, gripper, 3), dtype=np.uint8),
        "robot_obs": rng.normal(size=15).astype(np.float32),
    }


def _rollout(policy: VLAPolicy, steps: int, seed: int) -> np.ndarray:
    """Two slots with different instructions; slot 1 gets a new instruction half-way."""
    rng = np.random.default_rng(seed)
    policy.reset("open the drawer", slot=0)
    policy.reset("push the sliding door to the left side", slot=1)
    out = []
    for t in range(steps):
        if t == steps // 2:
            policy.reset("turn on the green light", slot=1)
        sizes = policy_sizes(policy)
        out.append(policy.act_batch([_obs(rng, *sizes), _obs(rng, *sizes)], [0, 1]))
    return np.stack(out)


def policy_sizes(policy: VLAPolicy) -> tuple[int, int]:
    sizes = policy.camera_sizes or {"rgb_static": (24, 24), "rgb_gripper": (16, 16)}
    return sizes["rgb_static"][0], sizes["rgb_gripper"][0]


def _count_encoded(policy: VLAPolicy) -> list[int]:
    """Record how many frames each VLM call encodes."""
    counts: list[int] = []
    backbone = policy.model.backbone
    original = backbone.forward

    def counting(images, *args, **kwargs):
        counts.append(int(images.shape[0]))
        return original(images, *args, **kwargs)

    backbone.forward = counting
    return counts


def test_cached_features_give_the_same_actions_on_the_shipped_checkpoint():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cached = VLAPolicy.from_checkpoint(str(SHIPPED))
        full = VLAPolicy.from_checkpoint(str(SHIPPED))
    full.cache = False
    assert cached.cache and cached.cfg.model.history_length == 4
    cached.camera_sizes = full.camera_sizes = {"rgb_static": (200, 200), "rgb_gripper": (84, 84)}
    counts_cached, counts_full = _count_encoded(cached), _count_encoded(full)
    a, b = _rollout(cached, 6, seed=1), _rollout(full, 6, seed=1)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(a[..., 6], b[..., 6])
    assert np.abs(a[..., :6]).max() > 1e-3  # the actions are not trivially zero
    assert counts_cached == [2] * 6  # one new frame per slot and step
    # recomputing sends each slot's window (up to 4 frames; slot 1 starts again at step 3)
    assert counts_full == [2, 4, 6, 5, 6, 7]


@pytest.mark.parametrize("exec_mode", ["chunk:3", "ensemble"])
def test_cached_features_with_state_and_chunked_execution(exec_mode):
    cfg = load_config(
        None,
        [
            "model.image_size=32",
            "model.history_length=3",
            "model.action_chunk_size=4",
            "model.head=gpt",
            "model.head_hidden=32",
            "model.state_key=robot_obs",
        ],
    )
    torch.manual_seed(0)
    model = VLAModel(cfg.model, train_tokenizer()).eval()
    model.set_state_stats(torch.zeros(15), torch.full((15,), 2.0))
    cached = VLAPolicy(model, cfg, None, STATS, exec_mode=exec_mode)
    full = VLAPolicy(model, cfg, None, STATS, exec_mode=exec_mode, cache_features=False)
    counts = _count_encoded(cached)  # the policies share the model: count the cached rollout only
    a = _rollout(cached, 8, seed=2)
    counts = list(counts)
    b = _rollout(full, 8, seed=2)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(a[..., 6], b[..., 6])
    if exec_mode == "ensemble":  # a prediction at every step: the one new frame of each slot
        assert counts == [2] * 8
    else:  # queries at steps 0, 3, 6 (slot 0) and 0, 3, 4, 7 (slot 1, new instruction at step 4),
        # each encoding the frames that arrived since the last one
        assert counts == [2, 6, 1, 3, 3]


def test_camera_sizes_come_from_the_checkpoint_and_other_sizes_warn_once():
    cfg = load_config(None, ["model.image_size=32", "model.history_length=2", "model.head_hidden=32"])
    cfg.model.camera_sizes = {"rgb_static": [24, 24], "rgb_gripper": [16, 16]}
    model = VLAModel(cfg.model, train_tokenizer()).eval()
    policy = VLAPolicy(model, cfg, None, STATS)
    assert policy.camera_sizes == {"rgb_static": (24, 24), "rgb_gripper": (16, 16)}
    rng = np.random.default_rng(0)
    policy.reset("open the drawer", slot=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy.act_batch([_obs(rng)], [0])  # the trained sizes: no warning
    with pytest.warns(
        UserWarning, match=r"rgb_static images arrive at 40x40, but the checkpoint was trained on 24x24"
    ):
        policy.act_batch([_obs(rng, static=40)], [0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy.act_batch([_obs(rng, static=40)], [0])  # once per camera


def test_the_shipped_checkpoint_declares_its_training_sizes():
    policy = VLAPolicy.from_checkpoint(str(SHIPPED))
    assert policy.camera_sizes == {"rgb_static": (96, 96), "rgb_gripper": (64, 64)}


def test_provenance_names_the_design_and_the_weights():
    """What places a run in the design grid (bench.figures) comes from the checkpoint's model config."""
    info = VLAPolicy.from_checkpoint(str(SHIPPED)).provenance()
    model = json.loads((SHIPPED / "config.json").read_text())["model"]
    assert (info["backbone"], info["structure"], info["head"]) == (
        model["backbone"],
        model["structure"],
        model["head"],
    )
    assert info["checkpoint"] == str(SHIPPED.resolve()) and len(info["checkpoint_sha256"]) == 64


def test_a_checkpoint_without_camera_sizes_loads_with_a_warning(tmp_path):
    import json
    import shutil

    old = tmp_path / "old_checkpoint"
    shutil.copytree(SHIPPED, old)
    config = json.loads((old / "config.json").read_text())
    del config["model"]["camera_sizes"]  # as checkpoints written before model.camera_sizes
    (old / "config.json").write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="does not record the camera sizes it was trained on"):
        policy = VLAPolicy.from_checkpoint(str(old))
    assert policy.camera_sizes is None


def test_shift_padding_scales_with_each_cameras_own_size():
    pads = scaled_shift_pads(AugmentConfig(), {"rgb_static": 200, "rgb_gripper": 84}, 64)
    assert pads == {"rgb_static": 3, "rgb_gripper": 3}  # 10 px of 200 and 4 px of 84, at 64 px
    pads = scaled_shift_pads(AugmentConfig(), {"rgb_static": 96, "rgb_gripper": 64}, 64)
    assert pads == {"rgb_static": 7, "rgb_gripper": 4}


def test_vla_spec_threads_option():
    from policies.vla import make_vla

    before = torch.get_num_threads()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make_vla(f"{SHIPPED},threads=1")
        assert torch.get_num_threads() == 1
        with pytest.raises(ValueError, match=r"threads='two': expected an integer >= 0"):
            make_vla(f"{SHIPPED},threads=two")
        with pytest.raises(ValueError, match="unknown vla option 'thread'; valid: exec, device, threads"):
            make_vla(f"{SHIPPED},thread=1")
    finally:
        torch.set_num_threads(before)
