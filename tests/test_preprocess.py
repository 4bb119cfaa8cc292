import math

import numpy as np
import pytest
import torch

from trainer.data.preprocess import (
    ActionQuantiles,
    denormalize_actions,
    discretize_actions,
    normalize_actions,
    process_history,
    undiscretize_actions,
)

Q = {"q01": [-0.5] * 7, "q99": [0.5] * 7}


def quantiles(q01, q99):
    return ActionQuantiles(q01=np.asarray(q01, np.float32), q99=np.asarray(q99, np.float32))


# ------------------------------------------------------------------------------------- normalisation


def test_normalize_seed_formula_hand_values():
    a = np.array(
        [
            [0.25, 2.0, -0.7, 0.0, 0.5, -0.5, 1.0],
            [-0.25, -2.0, 0.7, 0.1, 0.4999, -0.4999, -1.0],
        ]
    )
    n = normalize_actions(a, Q)
    np.testing.assert_allclose(n[0], [0.5, 1.0, -1.0, 0.0, 1.0, -1.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(n[1, :6], [-0.5, -1.0, 1.0, 0.2, 0.9998, -0.9998], atol=1e-12)
    assert n[1, 6] == -1.0
    assert n.dtype == np.float64


def test_normalize_per_dim_quantiles_and_object_forms():
    q01 = np.array([-1.0, 0.0, 2.0, -3.0, 0.0, 0.0, -1.0])
    q99 = np.array([1.0, 4.0, 3.0, 1.0, 0.5, 0.1, 1.0])
    a = np.array([0.5, 1.0, 2.75, -1.0, 0.25, 0.2, 0.3])
    expected = 2 * (np.clip(a, q01, q99) - q01) / (q99 - q01) - 1
    expected[6] = 1.0
    for q in ({"q01": q01.tolist(), "q99": q99.tolist()}, quantiles(q01, q99)):
        np.testing.assert_allclose(normalize_actions(a, q), expected, atol=1e-6)
    np.testing.assert_allclose(expected[:6], [0.5, -0.5, 0.5, 0.0, 0.0, 1.0], atol=1e-12)


def test_normalize_any_leading_shape_and_dtype():
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, size=(3, 4, 5, 7)).astype(np.float32)
    n = normalize_actions(a, Q)
    assert n.shape == a.shape and n.dtype == np.float32
    assert np.all(n >= -1) and np.all(n <= 1)
    flat = normalize_actions(a.reshape(-1, 7), Q)
    np.testing.assert_array_equal(n.reshape(-1, 7), flat)
    assert normalize_actions(np.zeros(7, dtype=np.int64), Q).dtype == np.float32
    with pytest.raises(ValueError, match=r"\(\.\.\., 7\)"):
        normalize_actions(np.zeros((2, 6)), Q)


def test_gripper_stays_binary():
    q = quantiles([-0.5] * 7, [0.5] * 7)
    g = np.array([-1.0, -0.3, 0.0, 1e-6, 0.3, 1.0, 5.0])
    a = np.zeros((7, 7))
    a[:, 6] = g
    n = normalize_actions(a, q)
    np.testing.assert_array_equal(n[:, 6], [-1, -1, -1, 1, 1, 1, 1])
    d = denormalize_actions(n, q)
    np.testing.assert_array_equal(d[:, 6], [-1, -1, -1, 1, 1, 1, 1])
    # a {0, 1} gripper maps onto {-1, +1}
    np.testing.assert_array_equal(normalize_actions(np.eye(7)[6:7] * [1], q)[0, 6], 1.0)
    # the binary dim is configurable: with none, dim 6 is normalised like the others
    n2 = normalize_actions(a, q, binary_dims=())
    np.testing.assert_allclose(n2[:, 6], 2 * (np.clip(g, -0.5, 0.5) + 0.5) - 1)
    n3 = normalize_actions(a, q, binary_dims=(0, 6))
    np.testing.assert_array_equal(n3[:, 0], -1.0)
    with pytest.raises(ValueError, match="binary_dims"):
        normalize_actions(a, q, binary_dims=(7,))


def test_zero_range_dims():
    q01 = np.array([0.3, -1, -1, -1, -1, -1, -1])
    q99 = np.array([0.3, 1, 1, 1, 1, 1, 1])
    a = np.array([[0.3, 0.5, 0, 0, 0, 0, 1], [5.0, -0.5, 0, 0, 0, 0, -1]])
    with np.errstate(all="raise"):
        n = normalize_actions(a, {"q01": q01, "q99": q99})
        d = denormalize_actions(n, {"q01": q01, "q99": q99})
    np.testing.assert_array_equal(n[:, 0], [0.0, 0.0])
    np.testing.assert_allclose(n[:, 1], [0.5, -0.5])
    np.testing.assert_allclose(d[:, 0], [0.3, 0.3])
    assert np.isfinite(n).all() and np.isfinite(d).all()


def test_normalize_denormalize_round_trip():
    rng = np.random.default_rng(1)
    q01 = rng.uniform(-2, 0, size=7)
    q99 = q01 + rng.uniform(0.1, 3, size=7)
    q = quantiles(q01, q99)
    a = rng.uniform(q.q01, q.q99, size=(1000, 7))
    a[:, 6] = rng.choice([-1.0, 1.0], size=1000)
    back = denormalize_actions(normalize_actions(a, q), q)
    np.testing.assert_allclose(back, a, atol=1e-9)
    # the inverse formula itself
    n = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, 0.25, 1.0])
    np.testing.assert_allclose(
        denormalize_actions(n, Q)[:6], [-0.5, -0.25, 0.0, 0.25, 0.5, 0.125], atol=1e-12
    )
    # values outside the range clamp, so they come back at the quantile bounds
    out = denormalize_actions(normalize_actions(np.array([9.0] * 6 + [1.0]), Q), Q)
    np.testing.assert_allclose(out[:6], 0.5)


def test_bad_quantiles():
    with pytest.raises(ValueError, match="q99"):
        normalize_actions(np.zeros(7), {"q01": [0.0] * 7})
    with pytest.raises(ValueError, match="q99 < q01"):
        normalize_actions(np.zeros(7), {"q01": [1.0] * 7, "q99": [0.0] * 7})


# -------------------------------------------------------------------------------------- ActionQuantiles


def test_action_quantiles_dict_round_trip_and_validation():
    q = ActionQuantiles(q01=[-0.5, -1, -2, -3, -4, -5, -1], q99=[0.5, 1, 2, 3, 4, 5, 1])
    assert q.q01.dtype == np.float32 and q.q01.shape == (7,)
    d = q.to_dict()
    assert d == {"q01": [-0.5, -1, -2, -3, -4, -5, -1], "q99": [0.5, 1, 2, 3, 4, 5, 1]}
    assert all(type(v) is float for v in d["q01"])
    q2 = ActionQuantiles.from_dict(d)
    np.testing.assert_array_equal(q2.q01, q.q01)
    np.testing.assert_array_equal(q2.q99, q.q99)
    with pytest.raises(ValueError, match="'q99' is missing"):
        ActionQuantiles.from_dict({"q01": [0.0] * 7})
    with pytest.raises(ValueError, match=r"'q01'.*7.*\(6,\)"):
        ActionQuantiles.from_dict({"q01": [0.0] * 6, "q99": [1.0] * 7})
    with pytest.raises(ValueError, match=r"'q99'.*7.*\(8,\)"):
        ActionQuantiles.from_dict({"q01": [0.0] * 7, "q99": [1.0] * 8})
    with pytest.raises(ValueError, match="q01"):
        ActionQuantiles(q01=np.zeros(3), q99=np.ones(7))


# ------------------------------------------------------------------------------------- discretisation


def test_discretize_seed_formula_hand_values():
    a = np.array([-1.0, 1.0, 0.0, -2.0, 3.0, 0.5, -0.5])
    tok = discretize_actions(a)
    assert tok.dtype == np.int64
    assert tok.tolist() == [
        10,
        265,
        137,
        10,
        265,
        math.floor(1.5 * 255 / 2) + 10,
        math.floor(0.5 * 255 / 2) + 10,
    ]
    assert tok.tolist()[5:] == [201, 73]
    assert discretize_actions(np.array([0.0]), num_bins=11, offset=0).tolist() == [5]
    assert discretize_actions(np.array([1.0]), num_bins=11, offset=3).tolist() == [13]


def test_undiscretize_centres_and_ends():
    assert undiscretize_actions(np.array([265]))[0] == 1.0
    lo = undiscretize_actions(np.array([10]))[0]
    assert lo == pytest.approx(-1 + 1 / 255, abs=1e-7)
    # token 137 is bin 127, which holds [254/255 - 1, 256/255 - 1): its centre is 0
    assert undiscretize_actions(np.array([137]))[0] == pytest.approx(0.0, abs=1e-7)
    assert undiscretize_actions(np.array([264]))[0] == pytest.approx(2 * 254.5 / 255 - 1, abs=1e-7)
    # the centre of each bin discretises back into the same bin
    tokens = np.arange(10, 266)
    np.testing.assert_array_equal(discretize_actions(undiscretize_actions(tokens)), tokens)
    assert undiscretize_actions(tokens).dtype == np.float32


def test_discretize_round_trip_within_half_bin():
    for num_bins in (256, 7):
        a = np.linspace(-1.0, 1.0, 200_001)
        back = undiscretize_actions(discretize_actions(a, num_bins=num_bins), num_bins=num_bins)
        half = 1.0 / (num_bins - 1)
        err = np.abs(back.astype(np.float64) - a)
        assert err.max() <= half + 1e-6
        assert err.max() > 0.9 * half  # a dense grid really reaches the half-bin bound
        assert discretize_actions(np.array([1.0]), num_bins=num_bins).item() == 10 + num_bins - 1
        assert back[-1] == 1.0 and back[0] == pytest.approx(-1 + half, abs=1e-6)


def test_undiscretize_rejects_out_of_range_tokens():
    with pytest.raises(ValueError, match=r"outside \[10, 265\]"):
        undiscretize_actions(np.array([9, 10]))
    with pytest.raises(ValueError, match=r"outside \[10, 265\]"):
        undiscretize_actions(np.array([266]))
    with pytest.raises(ValueError, match=r"outside \[0, 3\]"):
        undiscretize_actions(np.array([4]), num_bins=4, offset=0)
    with pytest.raises(ValueError, match="integers"):
        undiscretize_actions(np.array([10.5]))
    with pytest.raises(ValueError, match="outside"):
        undiscretize_actions(torch.tensor([300]))
    with pytest.raises(ValueError, match="NaN"):
        discretize_actions(np.array([np.nan]))


# -------------------------------------------------------------------------------------------- history


def test_process_history_seed_example_short_sequence():
    """Three steps into a window of 5: the seed's lists, real steps first, zeros after."""
    obs = [np.full((2, 2, 3), i + 1, dtype=np.uint8) for i in range(3)]
    act = [np.full(7, 0.1 * (i + 1)) for i in range(3)]
    history_obs, history_actions = process_history(obs, act, history_length=5)
    assert isinstance(history_obs, list) and isinstance(history_actions, list)
    assert len(history_obs) == len(history_actions) == 5
    for i in range(3):
        np.testing.assert_array_equal(history_obs[i], obs[i])
        np.testing.assert_array_equal(history_actions[i], act[i])
    for i in (3, 4):
        assert history_obs[i].shape == (2, 2, 3) and history_obs[i].dtype == np.uint8
        assert not history_obs[i].any() and not history_actions[i].any()
        assert history_actions[i].shape == (7,)


def test_process_history_default_length_and_long_sequences():
    obs = np.arange(40 * 2).reshape(40, 2)  # an array is split along its first axis
    act = np.arange(40 * 7).reshape(40, 7)
    history_obs, history_actions = process_history(obs, act)
    assert len(history_obs) == 16  # the seed's default history_length
    np.testing.assert_array_equal(np.stack(history_obs), obs[-16:])  # the most recent steps, in order
    np.testing.assert_array_equal(np.stack(history_actions), act[-16:])
    exact_obs, _ = process_history(obs[:16], act[:16])
    np.testing.assert_array_equal(np.stack(exact_obs), obs[:16])


def test_process_history_dict_and_tensor_steps():
    steps = [{"rgb": np.ones((4, 4, 3), np.uint8), "state": np.full(15, 2.0)} for _ in range(2)]
    history_obs, history_actions = process_history(steps, [torch.ones(7)] * 2, history_length=3)
    assert set(history_obs[2]) == {"rgb", "state"} and not history_obs[2]["rgb"].any()
    assert history_obs[2]["state"].shape == (15,) and (history_obs[1]["state"] == 2.0).all()
    assert isinstance(history_actions[2], torch.Tensor) and torch.equal(history_actions[2], torch.zeros(7))


def test_process_history_errors():
    with pytest.raises(ValueError, match="3 observations but 4 actions"):
        process_history(np.zeros((3, 2)), np.zeros((4, 7)))
    with pytest.raises(ValueError, match="history_length must be a positive integer"):
        process_history(np.zeros((3, 2)), np.zeros((3, 7)), history_length=0)
    with pytest.raises(ValueError, match="no steps"):
        process_history([], [], history_length=4)


def test_normalize_and_discretize_seed_examples():
    """The seed's keys '1st'/'99th' and its formulas, with hand-computed values."""
    q = {"1st": [-0.5, -1.0, 0.0, -2.0, -0.1, -0.2, -1.0], "99th": [0.5, 1.0, 4.0, 2.0, 0.1, 0.2, 1.0]}
    a = np.array([0.25, 3.0, 1.0, -2.0, 0.05, 0.0, 0.7])
    n = normalize_actions(a, q)
    # 2 * (clamp(a) - q01) / (q99 - q01) - 1; the gripper (dim 6) as a sign
    np.testing.assert_allclose(n, [0.5, 1.0, -0.5, -1.0, 0.5, 0.0, 1.0], atol=1e-12)
    np.testing.assert_array_equal(n, normalize_actions(a, {"q01": q["1st"], "q99": q["99th"]}))
    with pytest.raises(ValueError, match=r"expected the keys '1st' and '99th' \(or 'q01' and 'q99'\)"):
        normalize_actions(a, {"1st": q["1st"], "q99": q["99th"]})
    # floor((a + 1) * 255 / 2) + 10
    tokens = discretize_actions(np.array([-1.0, 0.0, 0.5, 1.0]))
    assert tokens.tolist() == [10, 137, 201, 265]


# ---------------------------------------------------------------------------------------------- torch


def test_torch_in_torch_out():
    a = torch.tensor([[0.25, 2.0, -0.7, 0.0, 0.5, -0.5, 0.0]], dtype=torch.float32)
    n = normalize_actions(a, Q)
    assert isinstance(n, torch.Tensor) and n.dtype == torch.float32 and n.device == a.device
    np.testing.assert_allclose(n.numpy(), normalize_actions(a.numpy(), Q), atol=1e-7)
    assert n[0].tolist() == pytest.approx([0.5, 1.0, -1.0, 0.0, 1.0, -1.0, -1.0])
    d = denormalize_actions(n.double(), quantiles([-0.5] * 7, [0.5] * 7))
    assert d.dtype == torch.float64
    np.testing.assert_allclose(d.numpy(), denormalize_actions(n.double().numpy(), Q), atol=1e-12)
    # zero range under torch
    z = normalize_actions(torch.ones(2, 7), {"q01": [1.0] * 7, "q99": [1.0] * 7})
    assert torch.equal(z[:, :6], torch.zeros(2, 6))

    x = torch.linspace(-1, 1, 1001, dtype=torch.float32)
    tok = discretize_actions(x)
    assert tok.dtype == torch.int64
    np.testing.assert_array_equal(tok.numpy(), discretize_actions(x.numpy()))
    assert tok[0].item() == 10 and tok[-1].item() == 265 and tok[500].item() == 137
    back = undiscretize_actions(tok)
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    np.testing.assert_allclose(back.numpy(), undiscretize_actions(tok.numpy()), atol=1e-7)
