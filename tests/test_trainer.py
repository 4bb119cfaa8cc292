"""The VLA trainer: configs, every shipped variant trains and runs a chain, checkpoints, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.trainer_helpers import TINY, fixed_batch, make_tiny_data
from trainer.checkpoint import CheckpointError, load_checkpoint
from trainer.config import ConfigError, load_config
from trainer.models.vla import ModelConfig, VLAModel
from trainer.tokenizer import train_tokenizer

CONFIGS = sorted(p for p in Path("trainer/configs").glob("*.json") if p.name != "base.json")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_data(tmp_path_factory.mktemp("data") / "store")


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_variant_learns_a_fixed_batch(config):
    cfg = load_config(config, [o for o in TINY if o.startswith("model.")])
    torch.manual_seed(0)
    model = VLAModel(cfg.model, train_tokenizer())
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    batch = fixed_batch()
    losses = []
    for _ in range(12):
        loss, _ = model.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses))
    assert min(losses[1:]) < 0.8 * losses[0], losses  # Adam at this lr may overshoot near the end
    model.eval()
    actions = model.predict(batch, n_actions=2)
    assert actions.shape == (2, 2, 7) and torch.all(actions[..., 6].abs() == 1)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_variant_trains_and_its_checkpoint_runs_a_chain(config, tiny_data, tmp_path):
    from bench.run import main as run_main
    from trainer.train import main as train_main

    out = tmp_path / "ckpt"
    assert train_main(["--config", str(config), f"data.path={tiny_data}", f"train.out={out}", *TINY]) == 0
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert (
        log[-1]["step"] == 2 and np.isfinite(log[-1]["loss"]) and "lr" in log[-1] and "grad_norm" in log[-1]
    )
    run = tmp_path / "run"
    code = run_main(
        [
            "--policy",
            f"vla:{out / 'latest'}",
            "--chains",
            "1",
            "--max-steps",
            "3",
            "--static-size",
            "24",
            "--gripper-size",
            "16",
            "--quiet",
            "--out",
            str(run),
        ]
    )
    assert code == 0
    record = json.loads((run / "episodes.jsonl").read_text())
    assert record["steps"][0] == 3 and not record["stop_reason"].startswith("error")


def test_config_inheritance_overrides_and_errors(tmp_path):
    cfg = load_config(
        "trainer/configs/llava_ph_gpt.json",
        ["train.max_steps=7", "optim.lr=0.5", 'model.cameras=["rgb_static"]'],
    )
    assert cfg.model.backbone == "llava" and cfg.model.head == "gpt" and cfg.model.history_length == 4
    assert cfg.train.max_steps == 7 and cfg.optim.lr == 0.5 and cfg.model.cameras == ["rgb_static"]
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['model.heed'\]; valid: .*'head'"):
        load_config(None, ["model.heed=fc"])
    with pytest.raises(ConfigError, match="model.backbone = 'gpt4' is not valid; choose one of .*kosmos"):
        load_config(None, ["model.backbone=gpt4"])
    with pytest.raises(ConfigError, match="model.structure"):
        load_config(None, ["model.structure=two_step"])
    with pytest.raises(ConfigError, match="model.head"):
        load_config(None, ["model.head=mlp"])
    bad = tmp_path / "loop.json"
    bad.write_text(json.dumps({"parent": "loop.json"}))
    with pytest.raises(ConfigError, match="loops back"):
        load_config(bad)
    (tmp_path / "sec.json").write_text(json.dumps({"modle": {}}))
    with pytest.raises(ConfigError, match=r"unknown section\(s\) \['modle'\]"):
        load_config(tmp_path / "sec.json")


def test_checkpoint_errors_and_stats_mismatch(tiny_data, tmp_path, capsys):
    from trainer.train import main as train_main

    out = tmp_path / "ck"
    assert (
        train_main(
            [
                "--config",
                "trainer/configs/kosmos_ph_fc.json",
                f"data.path={tiny_data}",
                f"train.out={out}",
                *TINY,
            ]
        )
        == 0
    )
    model, cfg, tok, stats = load_checkpoint(out / "latest")
    assert isinstance(model, VLAModel) and cfg.model.head == "fc" and "rel_actions" in stats
    (out / "latest" / "stats.json").unlink()
    with pytest.raises(CheckpointError, match=r"\['stats.json'\] are missing"):
        load_checkpoint(out / "latest")
    (out / "best" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config.json: corrupt JSON"):
        load_checkpoint(out / "best")
    stats_path = tiny_data / "stats.json"
    saved = stats_path.read_text()
    stats_path.write_text(saved.replace('"n_frames": 11', '"n_frames": 12'))
    try:
        assert (
            train_main(
                [
                    "--config",
                    "trainer/configs/kosmos_ph_fc.json",
                    f"data.path={tiny_data}",
                    f"train.out={tmp_path / 'x'}",
                    *TINY,
                ]
            )
            == 2
        )
        assert "statistics cover 12 frames but the dataset holds 11" in capsys.readouterr().err
    finally:
        stats_path.write_text(saved)


def test_resume_continues_the_step_count(tiny_data, tmp_path):
    from trainer.train import main as train_main

    out = tmp_path / "r"
    base = [
        "--config",
        "trainer/configs/kosmos_ph_lstm.json",
        f"data.path={tiny_data}",
        f"train.out={out}",
        *TINY,
    ]
    assert train_main(base) == 0
    assert train_main([*base, "train.max_steps=4", "--resume", str(out / "latest")]) == 0
    state = json.loads((out / "latest" / "trainer_state.json").read_text())
    assert state["step"] == 4
    steps = [json.loads(x)["step"] for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]


def test_pretrained_backbone_folder_loads(tmp_path):
    tok = train_tokenizer()
    model = VLAModel(ModelConfig(backbone="kosmos", image_size=32), tok)
    model.backbone.model.save_pretrained(tmp_path / "kosmos")
    again = VLAModel(ModelConfig(backbone="kosmos", pretrained=str(tmp_path / "kosmos")), tok)
    batch = fixed_batch()
    model.eval()
    again.eval()
    saved, loaded = model.backbone.model.state_dict(), again.backbone.model.state_dict()
    assert saved.keys() == loaded.keys()
    for key, value in saved.items():
        torch.testing.assert_close(value, loaded[key])
    a = model.features(batch)[0]
    b = again.features(batch)[0]
    torch.testing.assert_close(a, b)


def test_torchrun_two_processes_with_gloo(tiny_data, tmp_path):
    """The same command under torchrun trains with DistributedDataParallel (gloo on CPU)."""
    import subprocess
    import sys

    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
        "-m",
        "trainer.train",
        "--config",
        "trainer/configs/kosmos_ph_gpt.json",
        f"data.path={tiny_data}",
        f"train.out={out}",
        *TINY,
        "train.max_steps=3",
    ]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    state = json.loads((out / "latest" / "trainer_state.json").read_text())
    assert state["step"] == 3
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]  # rank 0 logs once per step
    load_checkpoint(out / "latest")


def test_bf16_training_and_rollout_eval_keep_the_best(tiny_data, tmp_path):
    from trainer.train import main as train_main

    out = tmp_path / "bf"
    args = [
        "--config",
        "trainer/configs/kosmos_ph_fc.json",
        f"data.path={tiny_data}",
        f"train.out={out}",
        *TINY,
        "train.precision=bf16",
        "eval.every=1",
        "eval.chains=1",
        "eval.max_steps=2",
    ]
    assert train_main(args) == 0
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert any("eval_avg_len" in r for r in log) and all(np.isfinite(r.get("loss", 0.0)) for r in log)
    best = json.loads((out / "best" / "trainer_state.json").read_text())
    assert "eval_avg_len" in best and best["step"] >= 1


class _ChunkModel(torch.nn.Module):
    """Stands in for a VLAModel: the chunk predicted at query q is [q, q+0.1, q+0.2, ...] on dim 0."""

    def __init__(self, chunk: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.backbone = type("B", (), {"image_size": 8})()
        self.queries = 0
        self.chunk = chunk

    def predict(self, batch, n_actions=None):
        b = len(batch["language_instruction"])
        out = torch.zeros(b, n_actions, 7)
        out[..., 0] = self.queries + 0.1 * torch.arange(n_actions)
        out[..., 6] = 1.0
        self.queries += 1
        return out


def _policy(mode: str):
    from policies.vla import VLAPolicy
    from trainer.config import TrainConfig

    cfg = TrainConfig()
    cfg.model.action_chunk_size = 4
    stats = {"rel_actions": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}
    return VLAPolicy(_ChunkModel(4), cfg, None, stats, exec_mode=mode, cache_features=False)


def test_chunk_execution_modes():
    obs = {"rgb_static": np.zeros((8, 8, 3), np.uint8), "rgb_gripper": np.zeros((8, 8, 3), np.uint8)}
    first = _policy("first")
    first.reset("go", slot=0)
    assert [first.act(obs)[0] for _ in range(3)] == pytest.approx([0.0, 1.0, 2.0])
    k = _policy("chunk:3")
    k.reset("go", slot=0)
    assert [k.act(obs)[0] for _ in range(4)] == pytest.approx([0.0, 0.1, 0.2, 1.0])
    ens = _policy("ensemble")
    ens.reset("go", slot=0)
    a0, a1 = ens.act(obs)[0], ens.act(obs)[0]
    w = np.exp(-0.1 * np.array([1.0, 0.0]))  # at t=1: chunk 0 (age 1) says 0.1, chunk 1 (age 0) says 1.0
    assert a0 == pytest.approx(0.0) and a1 == pytest.approx((w[0] * 0.1 + w[1] * 1.0) / w.sum())
    ens.reset("again", slot=0)  # a new instruction clears the history and the pending chunks
    assert ens.act(obs)[0] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="K must be an integer in 1..4"):
        _policy("chunk:9")
