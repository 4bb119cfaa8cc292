"""bench.fidelity (our table against CALVIN's env on matched states) and bench.perf env --against."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import fidelity, perf
from envs.calvin.official import objects
from envs.calvin.official.checkout import ENV_VAR
from tests.calvin_checkout import calvin_checkout

ROOT, WHY = calvin_checkout()
needs_calvin = pytest.mark.skipif(ROOT is None, reason=WHY)
KEYS = ("static_iou", "gripper_iou", "max_part_error_mm", "oracle_agreement")


@pytest.fixture
def calvin_dir(monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(ROOT))
    return ROOT


def test_label_image_and_ious():
    seg = np.array([[-1, 3, 3 | (1 << 24)], [3 | (2 << 24), 5, 5]])  # body 3 base, links 0 and 1; body 5
    labels = objects.label_image(seg, {(3, -1): "desk", (3, 0): "drawer", (3, 1): "button", (5, -1): "robot"})
    assert labels.tolist() == [["", "desk", "drawer"], ["button", "robot", "robot"]]
    other = labels.copy()
    other[1, 2] = "desk"
    got = objects.ious(labels, other)
    assert got["robot"] == 0.5 and got["desk"] == 0.5 and got["drawer"] == 1.0
    assert "led" not in got  # shows in neither image: no IoU


@needs_calvin
def test_one_state_of_d_meets_the_targets(calvin_dir, tmp_path, capsys):
    out = tmp_path / "fidelity.json"
    code = fidelity.main(
        [
            "calvin",
            "--json",
            str(out),
            "--scenes",
            "D",
            "--states",
            "1",
            "--figures",
            str(tmp_path),
            "--oracle-pairs",
            "60",
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    for key in KEYS:
        assert key in result and key in result["targets"]
    assert result["static_iou"] >= 0.85 and result["gripper_iou"] >= 0.75
    assert result["max_part_error_mm"] <= 5.0 and result["oracle_agreement"] == 1.0
    scene = result["per_scene"]["D"]
    assert scene["max_scene_obs_error"] < 1e-4  # the matching put both envs in one state
    assert set(scene["static_iou_per_object"]) >= {"desk", "drawer", "slider", "robot"}
    assert {"lightbulb", "drawer", "robot/tcp", "pink_block"} <= set(result["part_error_mm"])
    assert (tmp_path / "calvin_side_by_side_D.png").stat().st_size > 10_000
    assert "static IoU" in capsys.readouterr().out


@needs_calvin
def test_every_body_and_link_has_an_object_name(calvin_dir):
    from envs.calvin.backends import make_calvin_env
    from envs.calvin.chains import official_chains

    calvin = make_calvin_env("calvin_env", "A")
    ours = make_calvin_env("ours", "A")
    try:
        objects.match_state(calvin, ours, official_chains()[0].state)
        for segments, cid in (
            (objects.calvin_segments(calvin), calvin.env.cid),
            (objects.our_segments(ours), ours.cid),
        ):
            assert objects.unmapped_bodies(segments, cid) == []
            assert set(segments.values()) == set(objects.OBJECTS + objects.EXTRA)
    finally:
        calvin.close()
        ours.close()


def test_existing_json_is_refused(tmp_path, capsys):
    out = tmp_path / "old.json"
    out.write_text("{}")
    with pytest.raises(SystemExit) as exc:
        fidelity.main(["calvin", "--json", str(out), "--states", "1"])
    assert exc.value.code == 2 and "exists" in capsys.readouterr().err
    assert out.read_text() == "{}"
    with pytest.raises(SystemExit):
        perf.main(["env", "--against", "calvin_env", "--json", str(out)])
    assert out.read_text() == "{}"


def test_missing_checkout_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    assert fidelity.main(["calvin", "--json", str(tmp_path / "f.json"), "--states", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "git clone" in err
    with pytest.raises(SystemExit) as exc:
        perf.main(["env", "--against", "calvin_env", "--json", str(tmp_path / "p.json")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "git clone" in err
    assert not (tmp_path / "f.json").exists() and not (tmp_path / "p.json").exists()


@needs_calvin
def test_perf_against_calvin_writes_both_ratios(calvin_dir, tmp_path, capsys):
    out = tmp_path / "speed.json"
    perf.main(
        [
            "env",
            "--against",
            "calvin_env",
            "--steps",
            "6",
            "--camera-steps",
            "2",
            "--repeats",
            "1",
            "--json",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    for key in ("ratio_cameras", "ratio_no_cameras"):
        assert result[key] > 0
    assert result["cameras"]["steps"] == 2 and result["no_cameras"]["steps"] == 6
    assert result["ratio_cameras"] == pytest.approx(
        result["cameras"]["ours_steps_per_s"] / result["cameras"]["calvin_env_steps_per_s"]
    )
    # one repeat: the median of the paired ratios is that repeat's ratio
    assert result["paired_ratio_no_cameras"] == pytest.approx(result["ratio_no_cameras"])
    assert set(result["render_ms"]) == {"ours", "calvin_env"}
    assert "ratio" in capsys.readouterr().out
