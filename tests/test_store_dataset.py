"""The episode store (format, commit protocol, errors) and DemoDataset windows, masks, augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trainer.data.augment import AugmentConfig
from trainer.data.dataset import DemoDataset, LoaderConfig, SampleConfig, make_dataloader
from trainer.data.preprocess import normalize_actions
from trainer.data.stats import compute_dataset_stats, quantiles_from_stats, write_stats
from trainer.data.store import DatasetError, Episode, EpisodeStore, EpisodeWriter

LENGTHS = (5, 20, 12)


def make_episode(length: int, offset: int, task: str = "open_drawer") -> Episode:
    frames = np.arange(offset, offset + length)
    img = np.zeros((length, 8, 8, 3), dtype=np.uint8)
    img[:] = (frames % 250)[:, None, None, None]
    actions = np.zeros((length, 7), dtype=np.float32)
    actions[:, 0] = frames / 100.0
    actions[:, 1] = np.sin(frames)
    actions[:, 6] = np.where(frames % 2 == 0, 1.0, -1.0)
    robot = np.repeat(frames[:, None].astype(np.float32), 15, axis=1)
    data = {"rgb_static": img, "rgb_gripper": img[:, :4, :4], "robot_obs": robot, "rel_actions": actions}
    return Episode(data, {"task": task, "instruction": "pull the drawer open"})


@pytest.fixture()
def store_dir(tmp_path):
    writer = EpisodeWriter(tmp_path / "ds", env={"suite": "test"})
    offset = 0
    for n in LENGTHS:
        writer.add(make_episode(n, offset))
        offset += n
    write_stats(tmp_path / "ds", compute_dataset_stats(EpisodeStore(tmp_path / "ds")))
    return tmp_path / "ds"


def test_store_round_trip_and_metadata(store_dir):
    store = EpisodeStore(store_dir)
    assert len(store) == 3 and store.n_frames == sum(LENGTHS)
    assert store.env == {"suite": "test"}
    ep = store.episode(1)
    np.testing.assert_array_equal(ep.data["robot_obs"][:, 0], np.arange(5, 25))
    assert ep.info["instruction"] == "pull the drawer open"
    assert isinstance(store.fields["rgb_static"], np.memmap)


def test_interrupted_episode_is_truncated_on_reopen(store_dir):
    # bytes and a line of an episode whose commit (meta.json) never happened
    with open(store_dir / "data" / "robot_obs.bin", "ab") as f:
        f.write(b"\x01" * 60 * 7)
    with open(store_dir / "episodes.jsonl", "a") as f:
        f.write('{"start": 37, "end": 44, "ta')
    writer = EpisodeWriter(store_dir, env={"suite": "test"})
    writer.add(make_episode(4, 37))
    store = EpisodeStore(store_dir)
    assert len(store) == 4 and store.n_frames == 41
    np.testing.assert_array_equal(store.episode(3).data["robot_obs"][:, 0], np.arange(37, 41))


def test_writer_refuses_other_env_and_other_fields(store_dir):
    with pytest.raises(
        DatasetError, match=r"collected with other settings \(suite: ours \"other\", stored \"test\"\)"
    ):
        EpisodeWriter(store_dir, env={"suite": "other"})
    writer = EpisodeWriter(store_dir, env={"suite": "test"})
    bad = make_episode(3, 0)
    bad.data["robot_obs"] = bad.data["robot_obs"][:, :10]
    with pytest.raises(DatasetError, match="differ from the dataset"):
        writer.add(bad)
    uneven = make_episode(3, 0)
    uneven.data["rel_actions"] = uneven.data["rel_actions"][:2]
    with pytest.raises(DatasetError, match="equal length"):
        writer.add(uneven)


def test_store_errors_name_file_and_field(store_dir):
    (store_dir / "data" / "rgb_gripper.bin").unlink()
    with pytest.raises(DatasetError, match=r"rgb_gripper\.bin: data file of field 'rgb_gripper' is missing"):
        EpisodeStore(store_dir)


def test_store_errors_truncated_field_and_bad_meta(store_dir):
    path = store_dir / "data" / "robot_obs.bin"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DatasetError, match=r"field 'robot_obs' holds 100 bytes, expected"):
        EpisodeStore(store_dir)
    meta = json.loads((store_dir / "meta.json").read_text())
    del meta["fields"]
    (store_dir / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"meta\.json: key 'fields' is missing"):
        EpisodeStore(store_dir)


def test_store_error_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        EpisodeStore(tmp_path / "nothing")


def raw_config(**kw) -> SampleConfig:
    return SampleConfig(normalize=False, augment=AugmentConfig.off(), **kw)


def test_window_at_episode_start_is_left_padded(store_dir):
    ds = DemoDataset(store_dir, raw_config(history_length=4, action_chunk_size=3))
    s = ds[5]  # first frame of episode 1
    assert s["history_mask"].tolist() == [False, False, False, True]
    np.testing.assert_array_equal(s["observations"]["states"][:, 0].numpy(), [0, 0, 0, 5])
    assert torch.all(s["observations"]["images"]["rgb_static"][:3] == 0)
    np.testing.assert_allclose(s["observations"]["images"]["rgb_static"][3].numpy(), 5 / 255.0, atol=1e-6)
    np.testing.assert_allclose(s["actions"][3, :, 0].numpy(), [0.05, 0.06, 0.07], atol=1e-6)
    assert s["action_mask"][:3].sum() == 0 and s["action_mask"][3].all()


def test_window_at_episode_end_masks_the_chunk(store_dir):
    ds = DemoDataset(store_dir, raw_config(history_length=3, action_chunk_size=4))
    s = ds[23]  # frame 18 of episode 1, which ends at global frame 25 (exclusive)
    assert s["history_mask"].all()
    np.testing.assert_array_equal(s["observations"]["states"][:, 0].numpy(), [21, 22, 23])
    assert s["action_mask"][-1].tolist() == [True, True, False, False]
    np.testing.assert_allclose(s["actions"][-1, :2, 0].numpy(), [0.23, 0.24], atol=1e-6)
    assert torch.all(s["actions"][-1, 2:] == 0)
    assert s["action_mask"][0].tolist() == [True, True, True, True]  # frame 21: 21..24 all inside


def test_actions_are_normalised_with_the_dataset_quantiles(store_dir):
    ds = DemoDataset(
        store_dir, SampleConfig(augment=AugmentConfig.off(), history_length=2, action_chunk_size=2)
    )
    q = quantiles_from_stats(json.loads((store_dir / "stats.json").read_text()))
    s = ds[30]
    raw = EpisodeStore(store_dir).fields["rel_actions"][30:32]
    np.testing.assert_allclose(s["actions"][-1].numpy(), normalize_actions(np.asarray(raw), q), atol=1e-6)
    assert set(np.unique(s["actions"][..., 6].numpy())) <= {-1.0, 1.0, 0.0}
    assert float(s["actions"].abs().max()) <= 1.0


def test_augmentation_is_seeded_per_sample_and_epoch(store_dir):
    cfg = SampleConfig(
        history_length=4, action_chunk_size=2, augment=AugmentConfig(action_noise=0.05), seed=7
    )
    a, b = DemoDataset(store_dir, cfg), DemoDataset(store_dir, cfg)
    s1, s2 = a[10], b[10]
    for key in ("rgb_static", "rgb_gripper"):
        torch.testing.assert_close(s1["observations"]["images"][key], s2["observations"]["images"][key])
    torch.testing.assert_close(s1["actions"], s2["actions"])
    b.set_epoch(1)
    assert not torch.equal(s1["actions"], b[10]["actions"])

    from envs.calvin.language import TRAIN_INSTRUCTIONS
    from envs.calvin.paraphrases import paraphrases

    known = set(TRAIN_INSTRUCTIONS["open_drawer"]) | set(paraphrases("open_drawer"))
    words = {w for p in known for w in p.split()} | {"<unk>"}  # word dropout
    assert all(set(a[i]["language_instruction"].split()) <= words for i in range(20))
    assert len({a[i]["language_instruction"] for i in range(20)}) > 1


def test_set_epoch_reaches_persistent_loader_workers(store_dir):
    """The augmentation of a later epoch differs in the workers too, not only in the main process."""
    from torch.utils.data import DataLoader

    cfg = SampleConfig(history_length=2, action_chunk_size=2, augment=AugmentConfig(action_noise=0.05))
    ds = DemoDataset(store_dir, cfg)
    loader = DataLoader(ds, batch_size=4, shuffle=False, num_workers=1, persistent_workers=True)
    first = next(iter(loader))["actions"]
    assert torch.equal(first, next(iter(loader))["actions"])  # same epoch, same draws
    ds.set_epoch(1)
    second = next(iter(loader))["actions"]
    assert not torch.equal(first, second)
    ds.set_epoch(0)
    torch.testing.assert_close(first, next(iter(loader))["actions"])


def test_dataloader_batches_with_workers(store_dir):
    ds = DemoDataset(store_dir, SampleConfig(history_length=4, action_chunk_size=3))
    loader = make_dataloader(ds, LoaderConfig(batch_size=4, num_workers=2), seed=0)
    batch = next(iter(loader))
    assert batch["observations"]["images"]["rgb_static"].shape == (4, 4, 3, 8, 8)
    assert batch["actions"].shape == (4, 4, 3, 7) and batch["action_mask"].shape == (4, 4, 3)
    assert len(batch["language_instruction"]) == 4


def test_dataset_errors(store_dir, tmp_path):
    with pytest.raises(DatasetError, match=r"field\(s\) \['depth_static'\] are missing"):
        DemoDataset(store_dir, raw_config(image_keys=("depth_static",)))
    writer = EpisodeWriter(tmp_path / "no_lang", env={})
    ep = make_episode(4, 0)
    ep.info = {"task": "open_drawer"}
    writer.add(ep)
    with pytest.raises(DatasetError, match=r"episode 0 has no 'instruction'"):
        DemoDataset(tmp_path / "no_lang", raw_config())
    (store_dir / "stats.json").unlink()
    with pytest.raises(DatasetError, match="stats.json"):
        DemoDataset(store_dir, SampleConfig())
