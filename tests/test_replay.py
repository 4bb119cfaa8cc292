"""bench.replay: recorded episodes through a policy, step-aligned, with probes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.replay import main as replay_main
from bench.replay import replay, spread
from tests.trainer_helpers import TINY, make_tiny_data
from trainer.data.store import EpisodeStore


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    return make_tiny_data(tmp_path_factory.mktemp("data") / "store")


@pytest.fixture(scope="module")
def state_checkpoint(tiny_data, tmp_path_factory) -> Path:
    from trainer.train import main as train_main

    out = tmp_path_factory.mktemp("ck")
    args = ["--config", "trainer/configs/kosmos_ph_lstm.json", f"data.path={tiny_data}", f"train.out={out}"]
    assert train_main([*args, *TINY, "model.state_key=robot_obs"]) == 0
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

    def reset(self, instruction: str, **_: object) -> None:
        pass

    def act_batch(self, observations, slots) -> np.ndarray:
        self.calls += 1
        return np.stack([self.table[o["robot_obs"].tobytes()] for o in observations])


def test_replay_compares_each_step_with_its_own_recorded_action(tiny_data):
    store = EpisodeStore(tiny_data)
    oracle = Oracle(store)
    result = replay(oracle, store, [0, 1])
    assert result.steps == store.n_frames == 11 and result.episodes == 2
    assert result.arm_mse == 0.0 and result.gripper_accuracy == 1.0
    # frozen_state feeds the current state with every past frame: the oracle sees one state per step
    oracle.calls = 0
    frozen = replay(oracle, store, [0, 1], probe="frozen_state")
    assert frozen.arm_mse == 0.0 and oracle.calls == 11 + 9  # history 2: one extra call past frame 0


def test_probes_change_what_a_trained_checkpoint_sees(state_checkpoint, tiny_data, tmp_path, capsys):
    out = tmp_path / "replay.json"
    results = replay_main(
        [
            str(state_checkpoint),
            "--data",
            str(tiny_data),
            "--probes",
            *("none", "first_frame", "frozen_state"),
        ]
        + ["--json", str(out)]
    )
    by_probe = {r.probe: r for r in results}
    assert all(r.steps == 11 and np.isfinite(r.arm_mse) for r in results)
    assert by_probe["first_frame"].arm_mse != by_probe["none"].arm_mse  # the model looks at the images
    assert by_probe["frozen_state"].arm_mse != by_probe["none"].arm_mse  # and reads the state history
    assert "first_frame" in capsys.readouterr().out and out.exists()


def test_replay_says_what_is_wrong(state_checkpoint, tiny_data):
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
    assert spread(1068, 3) == [0, 534, 1067] and spread(2, 5) == [0, 1]
