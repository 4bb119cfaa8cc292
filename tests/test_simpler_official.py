"""The adapter for ManiSkill3's official SimplerEnv Bridge ports: what can be checked offline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from envs.simpler.official import (
    OFFICIAL_IDS,
    OfficialAssetsMissing,
    check_official_task,
    missing_assets,
    require_assets,
    robot_obs_from,
    to_official_action,
)


def test_ids_cover_the_bridge_family_and_exist_in_maniskill() -> None:
    from mani_skill.utils.registration import REGISTERED_ENVS

    from envs.simpler import TASKS

    assert set(OFFICIAL_IDS) == {t.name for t in TASKS.values() if t.family == "bridge"}
    for ms_id in OFFICIAL_IDS.values():
        assert ms_id in REGISTERED_ENVS
    with pytest.raises(ValueError, match="valid: put_spoon_on_towel"):
        check_official_task("open_drawer_top")


def test_action_conversion_matches_the_controller_convention() -> None:
    rotvec = np.array([0.05, -0.02, 0.08])
    out = to_official_action(np.array([0.01, -0.02, 0.03, *rotvec, -1.0]))
    np.testing.assert_allclose(out[:3], [0.01, -0.02, 0.03], atol=1e-7)
    # The controller builds its rotation from intrinsic XYZ Euler angles: the same rotation back.
    back = Rotation.from_euler("XYZ", out[3:6]).as_rotvec()
    np.testing.assert_allclose(back, rotvec, atol=1e-6)
    assert out[6] == -1.0  # closed stays closed (both +1 open)
    assert to_official_action(np.array([0, 0, 0, 0, 0, 0, 3.0]))[6] == 1.0
    with pytest.raises(ValueError, match="7 finite values"):
        to_official_action(np.zeros(6))


def test_robot_obs_layout() -> None:
    obs = robot_obs_from(np.arange(7.0), np.array([0.1] * 6 + [0.02, 0.02]), 0.25)
    assert obs.shape == (16,) and obs.dtype == np.float32
    assert obs[7] == pytest.approx(0.04) and obs[-1] == 0.25
    np.testing.assert_allclose(obs[8:14], 0.1)


def test_missing_assets_name_the_download_command(tmp_path) -> None:
    assert missing_assets(tmp_path) == ["bridge_v2_real2sim", "widowx250s"]
    with pytest.raises(OfficialAssetsMissing, match="mani_skill.utils.download_asset bridge_v2_real2sim"):
        require_assets(tmp_path)
    (tmp_path / "tasks/bridge_v2_real2sim_dataset").mkdir(parents=True)
    (tmp_path / "robots/widowx").mkdir(parents=True)
    require_assets(tmp_path)


def test_command_line_refuses_without_assets(tmp_path, monkeypatch, capsys) -> None:
    import mani_skill

    from bench.run import main

    monkeypatch.setattr(mani_skill, "ASSET_DIR", tmp_path)
    argv = ["--suite", "simpler", "--official", "--tasks", "bridge", "--policy", "random"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 2
    assert "download_asset" in capsys.readouterr().err
    assert main([*argv, "--tasks", "move_near", "--out", str(tmp_path / "r")]) == 2
    assert "no official port" in capsys.readouterr().err
