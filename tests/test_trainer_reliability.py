"""The trainer's outputs stay consistent: one run per folder, resume from the checkpoint's own config,
type-checked checkpoint configs, a locked and length-checked collection store, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.trainer_helpers import TINY, make_tiny_data
from trainer.checkpoint import CheckpointError, load_checkpoint
from trainer.data.store import DatasetError, Episode, EpisodeStore, EpisodeWriter
from trainer.train import main as train_main

FC = "trainer/configs/kosmos_ph_fc.json"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_data(tmp_path_factory.mktemp("data") / "store")


def _log_steps(out: Path) -> list[int]:
    return [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()]


def _step(checkpoint: Path) -> int:
    return json.loads((checkpoint / "trainer_state.json").read_text())["step"]


def test_fresh_run_refuses_a_folder_with_a_run_and_resume_never_mixes(tiny_data, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--config", FC, f"data.path={tiny_data}", f"train.out={out}", *TINY]
    assert train_main([*base, "train.max_steps=3"]) == 0
    log_before = (out / "train_log.jsonl").read_text()
    assert train_main([*base, "train.max_steps=1"]) == 2
    err = capsys.readouterr().err
    assert f"train.out = {out} already holds a training run" in err and f"--resume {out / 'latest'}" in err
    assert _step(out / "latest") == 3 and (out / "train_log.jsonl").read_text() == log_before
    # a crash after step 4 was logged but before it was saved: resuming from step 3 redoes step 4 once
    with open(out / "train_log.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "loss": 99.0}) + "\n")
    assert train_main([*base, "train.max_steps=5", "--resume", str(out / "latest")]) == 0
    assert _log_steps(out) == [1, 2, 3, 4, 5] and _step(out / "latest") == 5
    assert all(json.loads(x)["loss"] != 99.0 for x in (out / "train_log.jsonl").read_text().splitlines())
    # resuming another folder's checkpoint into a folder that holds a run mixes two runs: refused
    other = tmp_path / "other"
    assert train_main(["--config", FC, f"data.path={tiny_data}", f"train.out={other}", *TINY]) == 0
    assert train_main([*base, "train.max_steps=6", "--resume", str(other / "latest")]) == 2
    assert "holds another training run" in capsys.readouterr().err
    assert _step(out / "latest") == 5


def test_resume_takes_the_architecture_from_the_checkpoint(tiny_data, tmp_path, capsys):
    out = tmp_path / "fc"
    assert train_main(["--config", FC, f"data.path={tiny_data}", f"train.out={out}", *TINY]) == 0
    # no --config: the default config would be a PaliGemma LSTM; the checkpoint is a Kosmos FC
    assert train_main(["--resume", str(out / "latest"), f"data.path={tiny_data}", "train.max_steps=3"]) == 0
    _, cfg, _, _ = load_checkpoint(out / "latest")
    assert (cfg.model.backbone, cfg.model.head, cfg.model.history_length) == ("kosmos", "fc", 2)
    assert _step(out / "latest") == 3 and _log_steps(out) == [1, 2, 3]
    capsys.readouterr()
    code = train_main(["--config", "trainer/configs/paligemma_ph_lstm.json", "--resume", str(out / "latest")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the architecture comes from the checkpoint" in err
    assert 'model.backbone: given "paligemma", checkpoint "kosmos"' in err
    assert 'model.head: given "lstm", checkpoint "fc"' in err


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("history_length", [4], r"model\.history_length must be int, got \[4\] \(list\)"),
        ("cameras", "rgb_static", r"model\.cameras must be list\[str\], got \"rgb_static\" \(str\)"),
        ("camera_sizes", {"rgb_static": [24, 24]}, r"model\.camera_sizes .* missing \['rgb_gripper'\]"),
    ],
)
def test_checkpoint_config_is_type_checked_on_load(tiny_data, tmp_path, key, value, message):
    out = tmp_path / "ck"
    assert train_main(["--config", FC, f"data.path={tiny_data}", f"train.out={out}", *TINY]) == 0
    path = out / "latest" / "config.json"
    raw = json.loads(path.read_text())
    assert raw["model"]["camera_sizes"] == {"rgb_static": [24, 24], "rgb_gripper": [16, 16]}
    raw["model"][key] = value
    path.write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=f"^{path}: {message}"):
        load_checkpoint(out / "latest")


def test_config_types_and_numeric_folder_names():
    from trainer.config import ConfigError, load_config

    assert load_config(None, ["train.out=2024", "optim.lr=1"]).train.out == "2024"
    with pytest.raises(ConfigError, match=r"train\.compile must be bool, got 1 \(int\)"):
        load_config(None, ["train.compile=1"])
    with pytest.raises(ConfigError, match=r"model\.state_dims must be list\[int\] \| None"):
        load_config(None, ['model.state_dims=[0, "a"]'])


def _episode(n: int) -> Episode:
    return Episode(
        {"rgb_static": np.zeros((n, 8, 8, 3), np.uint8), "rel_actions": np.zeros((n, 7), np.float32)},
        {"task": "open_drawer", "instruction": "open the drawer"},
    )


def test_store_reopen_checks_field_lengths_and_names_differing_settings(tmp_path):
    root = tmp_path / "store"
    env = {"suite": "calvin", "static_size": 8, "collector": {"seed": 0, "policy": "expert"}}
    writer = EpisodeWriter(root, env=env)
    writer.add(_episode(5))
    writer.add(_episode(4))
    with pytest.raises(DatasetError) as info:
        EpisodeWriter(root, env={**env, "static_size": 16, "collector": {"seed": 1, "policy": "expert"}})
    message = str(info.value)
    assert "static_size: ours 16, stored 8" in message and "collector.seed: ours 1, stored 0" in message
    assert "suite" not in message and "policy" not in message and "\n" not in message
    image = root / "data" / "rgb_static.bin"
    with open(image, "r+b") as f:
        f.truncate(1000)
    with pytest.raises(DatasetError, match=rf"^{image}: holds 1000 bytes, expected 1728 for the 9 committed"):
        EpisodeWriter(root, env=env)
    assert image.stat().st_size == 1000  # nothing was appended at the wrong offset


def test_collect_locks_its_store(tmp_path, capsys):
    from bench.rundir import locked
    from trainer.collect import main as collect_main

    out = tmp_path / "d"
    out.mkdir()
    with locked(out):
        code = collect_main(["--out", str(out), "--episodes", "1", "--scenes", "D", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{out} is locked by another process (pid" in err
    assert not (out / "meta.json").exists()


def test_loader_bench_on_a_missing_folder_says_one_line(tmp_path, capsys):
    from trainer.data.bench import main as bench_main

    assert bench_main([str(tmp_path / "nonexistent")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"trainer.data.bench: error: {tmp_path / 'nonexistent'}: dataset folder does not exist"


def test_store_reads_committed_lines_only(tmp_path):
    root = tmp_path / "s"
    writer = EpisodeWriter(root, env={})
    writer.add(_episode(3))
    with open(root / "episodes.jsonl", "a") as f:
        f.write('{"start": 3, "end"')  # a line cut by a kill
    assert len(EpisodeStore(root)) == 1
    EpisodeWriter(root, env={}).add(_episode(2))
    store = EpisodeStore(root)
    assert [(e["start"], e["end"]) for e in store.episodes] == [(0, 3), (3, 5)]
