import json

import numpy as np
import pytest

from trainer.data.preprocess import ActionQuantiles, normalize_actions
from trainer.data.stats import (
    compute_action_stats,
    compute_dataset_stats,
    quantiles_from_stats,
    read_stats,
    write_stats,
)
from trainer.data.store import DatasetError, Episode, EpisodeStore, EpisodeWriter


def make_store(root, lengths=(40, 25, 35), seed=0, with_actions=True):
    rng = np.random.default_rng(seed)
    writer = EpisodeWriter(root, env={"suite": "test"})
    for i, t in enumerate(lengths):
        rel = rng.normal(0, 0.3, size=(t, 7)).astype(np.float32)
        rel[:, 6] = rng.choice([-1.0, 1.0], size=t)
        data = {
            "rel_actions": rel,
            "robot_obs": rng.normal(1.0, 2.0, size=(t, 15)).astype(np.float32),
            "scene_obs": rng.uniform(-1, 1, size=(t, 24)),
            "rgb_static": np.zeros((t, 4, 4, 3), dtype=np.uint8),
        }
        if with_actions:
            data["actions"] = rng.uniform(-2, 2, size=(t, 7)).astype(np.float32)
        writer.add(Episode(data, {"task": f"t{i}"}))
    return EpisodeStore(root)


def test_compute_action_stats_values():
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, size=(5000, 7))
    a[:, 6] = rng.choice([-1.0, 1.0], size=5000)
    a[:, 5] = 0.25  # constant dim
    s = compute_action_stats(a)
    assert s["n"] == 5000 and s["binary_dims"] == [6]
    for key, ref in (("mean", a.mean(0)), ("std", a.std(0)), ("min", a.min(0)), ("max", a.max(0))):
        np.testing.assert_allclose(s[key], ref, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(s["q01"][:6], np.quantile(a[:, :6], 0.01, axis=0), atol=1e-12)
    np.testing.assert_allclose(s["q99"][:6], np.quantile(a[:, :6], 0.99, axis=0), atol=1e-12)
    assert s["q01"][6] == -1.0 and s["q99"][6] == 1.0
    assert s["q01"][5] == s["q99"][5] == 0.25 and s["std"][5] == pytest.approx(0.0, abs=1e-12)
    # hand-checkable: 0..100 -> q01 = 1, q99 = 99
    line = np.repeat(np.arange(101.0)[:, None], 7, axis=1)
    s2 = compute_action_stats(line, binary_dims=())
    np.testing.assert_allclose(s2["q01"], 1.0)
    np.testing.assert_allclose(s2["q99"], 99.0)
    assert s2["binary_dims"] == []


def test_compute_action_stats_chunking_is_exact():
    rng = np.random.default_rng(4)
    a = rng.normal(5.0, 1e-3, size=(1001, 7))  # large offset, small spread: tests the moment merge
    whole = compute_action_stats(a)
    chunked = compute_action_stats(a, chunk_size=7)
    for key in ("q01", "q99", "min", "max"):
        np.testing.assert_array_equal(chunked[key], whole[key])
    np.testing.assert_allclose(chunked["mean"], a.mean(0), rtol=1e-13)
    np.testing.assert_allclose(chunked["std"], a.std(0), rtol=1e-8)


def test_compute_action_stats_errors():
    with pytest.raises(ValueError, match="no rows"):
        compute_action_stats(np.zeros((0, 7)))
    with pytest.raises(ValueError, match="2-D"):
        compute_action_stats(np.zeros(7))
    bad = np.zeros((10, 7))
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"non-finite values in dim\(s\) \[2\]"):
        compute_action_stats(bad)


def test_compute_dataset_stats_matches_concatenated_episodes(tmp_path):
    store = make_store(tmp_path / "ds")
    stats = compute_dataset_stats(store, chunk_size=16, max_buffer_bytes=1)  # many chunks, one dim a pass
    assert stats["n_frames"] == 100 and stats["n_episodes"] == 3
    assert set(stats) == {"n_frames", "n_episodes", "rel_actions", "actions", "robot_obs", "scene_obs"}
    eps = list(store)
    for name in ("rel_actions", "actions"):
        full = np.concatenate([e.data[name] for e in eps])
        ref = compute_action_stats(full)
        for key in ("q01", "q99", "min", "max"):
            np.testing.assert_array_equal(stats[name][key], ref[key], err_msg=f"{name}.{key}")
        np.testing.assert_allclose(stats[name]["mean"], full.astype(np.float64).mean(0), rtol=1e-10)
        np.testing.assert_allclose(stats[name]["std"], full.astype(np.float64).std(0), rtol=1e-10)
        assert stats[name]["q01"][6] == -1 and stats[name]["q99"][6] == 1
        assert stats[name]["n"] == 100
    for name, d in (("robot_obs", 15), ("scene_obs", 24)):
        full = np.concatenate([e.data[name] for e in eps]).astype(np.float64)
        s = stats[name]
        assert s["q01"].shape == (d,) and s["n"] == 100
        np.testing.assert_allclose(s["q01"], np.quantile(full, 0.01, axis=0), atol=1e-12)
        np.testing.assert_allclose(s["q99"], np.quantile(full, 0.99, axis=0), atol=1e-12)
        np.testing.assert_allclose(s["mean"], full.mean(0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(s["std"], full.std(0), rtol=1e-10)
        np.testing.assert_array_equal(s["min"], full.min(0))
        np.testing.assert_array_equal(s["max"], full.max(0))
        assert "binary_dims" not in s  # no gripper override on states
    # defaults (one chunk, one buffer) agree with the chunked run
    default = compute_dataset_stats(store)
    np.testing.assert_array_equal(default["scene_obs"]["q99"], stats["scene_obs"]["q99"])


def test_compute_dataset_stats_optional_fields_and_empty(tmp_path):
    store = make_store(tmp_path / "ds", lengths=(5,), with_actions=False)
    stats = compute_dataset_stats(store)
    assert "actions" not in stats and "rel_actions" in stats
    writer_root = tmp_path / "empty"
    EpisodeWriter(writer_root, env={})
    with pytest.raises(DatasetError, match="no frames"):
        compute_dataset_stats(EpisodeStore(writer_root))


def test_write_read_round_trip(tmp_path):
    store = make_store(tmp_path / "ds")
    stats = compute_dataset_stats(store)
    path = write_stats(store.root, stats)
    assert path == store.root / "stats.json"
    assert not [p for p in store.root.iterdir() if p.name.endswith(".tmp")]
    raw = json.loads(path.read_text())  # plain JSON: lists of floats, ints
    assert isinstance(raw["rel_actions"]["q01"], list) and isinstance(raw["n_frames"], int)
    back = read_stats(store.root)
    assert back["n_frames"] == 100 and back["n_episodes"] == 3
    for name in ("rel_actions", "actions", "robot_obs", "scene_obs"):
        for key in ("q01", "q99", "mean", "std", "min", "max"):
            assert isinstance(back[name][key], np.ndarray)
            np.testing.assert_array_equal(back[name][key], stats[name][key], err_msg=f"{name}.{key}")
        assert back[name]["n"] == 100
    q = quantiles_from_stats(back)
    assert isinstance(q, ActionQuantiles)
    np.testing.assert_allclose(q.q01, stats["rel_actions"]["q01"], rtol=1e-6)
    np.testing.assert_allclose(q.q99, stats["rel_actions"]["q99"], rtol=1e-6)
    qa = quantiles_from_stats(back, field="actions")
    np.testing.assert_allclose(qa.q99, stats["actions"]["q99"], rtol=1e-6)
    # the quantiles normalise the store's own actions into [-1, 1] with a binary gripper
    n = normalize_actions(store.fields["rel_actions"][:], q)
    assert n.min() >= -1 and n.max() <= 1 and set(np.unique(n[:, 6])) <= {-1.0, 1.0}
    # overwriting is fine
    write_stats(store.root, {**stats, "n_episodes": 7})
    assert read_stats(store.root)["n_episodes"] == 7


def test_read_stats_missing_file_and_keys(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    with pytest.raises(DatasetError, match=r"stats\.json: file is missing"):
        read_stats(root)
    write_stats(root, {"n_episodes": 1})
    with pytest.raises(DatasetError, match=r"stats\.json: key 'n_frames' is missing"):
        read_stats(root)
    entry = {
        "q01": [0.0] * 7,
        "q99": [1.0] * 7,
        "mean": [0.5] * 7,
        "std": [0.1] * 7,
        "min": [0.0] * 7,
        "n": 3,
    }
    write_stats(root, {"n_frames": 3, "n_episodes": 1, "rel_actions": entry})
    with pytest.raises(DatasetError, match=r"stats\.json: key 'rel_actions\.max' is missing"):
        read_stats(root)
    write_stats(root, {"n_frames": 3, "n_episodes": 1, "robot_obs": {**entry, "max": [1.0] * 6}})
    with pytest.raises(DatasetError, match=r"'robot_obs\.max' must be a list of 7"):
        read_stats(root)
    (root / "stats.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        read_stats(root)


def test_write_stats_rejects_bad_values(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        write_stats(tmp_path / "nope", {"n_frames": 0, "n_episodes": 0})
    with pytest.raises(ValueError, match=r"'rel_actions\.mean'.*non-finite"):
        write_stats(tmp_path, {"n_frames": 1, "n_episodes": 1, "rel_actions": {"mean": np.array([np.nan])}})
    assert not (tmp_path / "stats.json").exists()


def test_quantiles_from_stats_errors():
    with pytest.raises(DatasetError, match=r"field 'rel_actions' is missing.*\['actions'\]"):
        quantiles_from_stats({"n_frames": 1, "actions": {"q01": [0] * 7, "q99": [1] * 7}})
    with pytest.raises(DatasetError, match=r"'rel_actions'.*'q99' is missing"):
        quantiles_from_stats({"rel_actions": {"q01": [0] * 7}})
    with pytest.raises(DatasetError, match=r"'rel_actions'.*'q01'.*7.*\(15,\)"):
        quantiles_from_stats({"rel_actions": {"q01": [0] * 15, "q99": [1] * 15}})
