"""trainer.vision_probe: the synthetic localisation task and a backbone that learns it."""

from __future__ import annotations

import pytest
import torch

from trainer.vision_probe import chance_mse, localisation_batch, main, probe


def test_the_target_is_where_the_square_is():
    batch = localisation_batch(8, 2, 3, 32, ["rgb_static", "rgb_gripper"], torch.Generator().manual_seed(0))
    images = batch["observations"]["images"]["rgb_static"]
    assert images.shape == (8, 2, 3, 32, 32) and batch["actions"].shape == (8, 2, 3, 7)
    assert torch.equal(images, batch["observations"]["images"]["rgb_gripper"])
    for i in range(8):
        bright = (images[i, 0, 0] == 1.0).nonzero()
        row, col = bright.min(0).values.tolist()
        assert bright.shape[0] == 8 * 8  # a quarter of the side
        expected = torch.tensor([row, col]) / (32 - 8) * 2 - 1
        torch.testing.assert_close(batch["actions"][i, 1, 2, :2], expected)
        assert (batch["actions"][i, ..., 2:6] == 0).all() and (batch["actions"][i, ..., 6] == 1).all()
    big = localisation_batch(4000, 1, 1, 64, ["rgb_static"], torch.Generator().manual_seed(1))
    assert chance_mse(big) == pytest.approx(1 / 9, rel=0.05)


def test_a_backbone_that_keeps_patch_tokens_learns_to_localise():
    overrides = ["model.image_size=32", "model.history_length=1", 'model.cameras=["rgb_static"]']
    curve = probe(
        "trainer/configs/paligemma_os_cont.json", steps=200, batch=16, every=200, overrides=overrides
    )
    assert [s for s, _ in curve] == [0, 200]
    assert curve[-1][1] < 0.3 * curve[0][1]  # chance: the held-out MSE of predicting 0


def test_bad_input(capsys):
    with pytest.raises(ValueError, match="pick a continuous structure"):
        probe("trainer/configs/kosmos_os_disc.json", steps=1)
    with pytest.raises(SystemExit):
        main(["--steps", "0"])
    assert "--steps, --every and --batch must be >= 1" in capsys.readouterr().err
