"""SimplerEnv's variant aggregation on the Google-robot scenes of the real embodiment.

Definitions and layouts are tested on plain numbers; the scene tests need ManiSkill's robot assets
(``MS_ASSET_DIR``) and SimplerEnv's data folder (``SIMPLER_ASSET_DIR``) and skip with the reason when
either is missing. Each variant is checked to change what it claims and nothing else.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from envs.simpler.google_layout import episode_layout
from envs.simpler.google_variant_layout import distractor_xys, variant_episodes, variant_layout
from envs.simpler.real_variants import (
    HEAD_CAMERA_1,
    HEAD_CAMERA_2,
    KIND_VARIANTS,
    REAL_VARIANTS,
    SIM_BASE,
    check_real_variant,
    stage,
    task_variants,
)
from envs.simpler.variants import VARIANTS
from tests.simpler_assets import require_assets

SIZE = (96, 80)


# --- definitions (no assets needed) ----------------------------------------------------------------
def test_every_variant_names_its_source_and_camera_variants_stay_out_of_the_aggregate() -> None:
    for _, variants in KIND_VARIANTS.values():
        assert next(iter(variants)) == SIM_BASE
        for v in variants.values():
            assert "SimplerEnv" in v.source or "ManiSkill2_real2sim" in v.source
            assert v.in_aggregate == (not v.name.startswith("camera_orientation"))
    # a name shared with the Panda scenes counts in the aggregate alike
    for name in set(REAL_VARIANTS) & set(VARIANTS):
        assert REAL_VARIANTS[name].in_aggregate == VARIANTS[name].in_aggregate


def test_simplerenv_variant_sets_and_episode_counts() -> None:
    assert (
        len(task_variants("pick_can_horizontal")) == 11
    )  # base, 2 tables, 2 distractor sets, 2 bgs, 2 lights, 2 cams
    assert len(task_variants("move_near")) == 10
    assert task_variants("open_drawer_top") == task_variants("place_apple_in_top_drawer")
    assert set(task_variants("close_drawer_bottom")) == {
        SIM_BASE,
        "background_1",
        "background_2",
        "lighting_darker",
        "lighting_brighter",
        "cabinet_2",
        "cabinet_3",
    }
    counts = {t: variant_episodes(t) for t in ("pick_can_standing", "move_near", "open_drawer_middle")}
    assert counts == {"pick_can_standing": 25, "move_near": 60, "open_drawer_middle": 9}
    assert variant_episodes("place_apple_in_top_drawer") == 27
    assert len(stage("pick_can_vertical", "distractors").distractors) == 4
    assert len(stage("pick_can_vertical", "distractors_more").distractors) == 6
    assert stage("move_near", "camera_orientation_1").head == HEAD_CAMERA_1
    assert stage("move_near", "camera_orientation_2").head == HEAD_CAMERA_2


def test_bad_variants_name_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: base, sim_base, table_texture_1"):
        check_real_variant("pick_can_horizontal", "disco_lighting")
    with pytest.raises(ValueError, match="no variant aggregation"):
        check_real_variant("put_carrot_on_plate", "lighting_darker")
    check_real_variant("put_carrot_on_plate", "base")


def test_variant_layouts_follow_simplerenv_scripts() -> None:
    vm, va = episode_layout("pick_can_horizontal", 7), variant_layout("pick_can_horizontal", 7, SIM_BASE)
    assert (va.xys, va.robot_xy, va.models) == (vm.xys, vm.robot_xy, vm.models)
    assert va.overlay == "" and va.urdf_version == "" and vm.overlay
    assert variant_layout("pick_can_horizontal", 7, "base") == vm
    xys = [variant_layout("open_drawer_top", i, SIM_BASE).robot_xy for i in range(9)]
    assert xys[0] == (0.65, -0.2) and xys[1] == (0.65, 0.0) and xys[8] == (0.85, 0.2)
    apple = variant_layout("place_apple_in_top_drawer", 26, SIM_BASE)
    assert apple.robot_xy == (0.65, 0.2) and apple.models == ("apple",) and apple.xys == ((-0.02, 0.08),)
    near = variant_layout("move_near", 13, SIM_BASE)
    assert (
        near.models == ("opened_7up_can", "apple", "sponge") and near.model_json == "info_pick_custom_v0.json"
    )
    two = variant_layout("move_near", 13, "distractors_none")
    assert two.models == tuple(near.models[i] for i in (near.source, near.target))
    assert (two.source, two.target) == (0, 1)


def test_distractors_drop_where_simplerenv_allows_and_repeat() -> None:
    can = (-0.235, 0.2)
    xys = distractor_xys("pick_can_horizontal", 3, "distractors_more", can, 6)
    assert xys == distractor_xys("pick_can_horizontal", 3, "distractors_more", can, 6)
    for xy in xys:
        assert -0.5 <= xy[0] <= -0.1 and 0.05 <= xy[1] <= 0.35
        assert np.hypot(xy[0] - can[0], xy[1] - can[1]) > 0.25


# --- scenes ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assets() -> None:
    require_assets(["custom/info_pick_custom_v0.json", "custom/mk_station2.urdf"], "googlerobot")


@pytest.fixture(scope="module")
def frames(assets):
    """First frames (rgb, segmentation ids of named actors, env facts) per (task, variant), cached."""
    from envs.simpler.real_env import SimplerRealEnv

    envs: dict = {}
    cache: dict = {}

    def get(task: str, variant: str, episode: int = 0) -> dict:
        key = (task, variant, episode)
        if key not in cache:
            if task not in envs:
                envs[task] = SimplerRealEnv(task, variant, image_size=SIZE)
            env = envs[task]
            obs, info = env.reset(seed=0, options={"episode": episode, "variant": variant})
            scene = env.scene
            seg = scene.get_obs()["sensor_data"]["overhead_camera"]["segmentation"][0, ..., 0].numpy()
            ids = {
                name: a.per_scene_id
                for name, a in [("table", getattr(scene, "table", None))]
                if a is not None
            }
            ids.update({a.name: a.per_scene_id for a in scene.room})
            cache[key] = {
                "rgb": obs["rgb_static"].astype(np.int32),
                "seg": seg,
                "ids": {k: int(v[0]) for k, v in ids.items()},
                "n_actors": len(scene.objs) + len(scene.distractors),
                "camera": scene._sensors["overhead_camera"].camera.get_global_pose().raw_pose[0].numpy(),
                "objects": info["objects"],
                "scene_obs": obs["scene_obs"],
            }
        return cache[key]

    yield get
    for env in envs.values():
        env.close()


def _mask(frame: dict, *names: str) -> np.ndarray:
    return np.isin(frame["seg"], [frame["ids"][n] for n in names])


WALLS = ("wall_back", "wall_left", "wall_right", "floor")


@pytest.mark.parametrize("variant", ["table_texture_1", "table_texture_2"])
def test_table_variants_change_the_table_only(frames, variant: str) -> None:
    base, other = frames("pick_can_horizontal", SIM_BASE), frames("pick_can_horizontal", variant)
    table = _mask(base, "table")
    assert table.mean() > 0.1
    np.testing.assert_array_equal(base["seg"], other["seg"])
    assert np.abs(base["rgb"][table] - other["rgb"][table]).mean() > 10
    np.testing.assert_array_equal(base["rgb"][~table], other["rgb"][~table])


@pytest.mark.parametrize("variant", ["background_1", "background_2"])
def test_background_variants_change_walls_and_floor_only(frames, variant: str) -> None:
    base, other = frames("pick_can_horizontal", SIM_BASE), frames("pick_can_horizontal", variant)
    room = _mask(base, *WALLS)
    assert room.mean() > 0.1
    assert np.abs(base["rgb"][room] - other["rgb"][room]).mean() > 10
    np.testing.assert_array_equal(base["rgb"][~room], other["rgb"][~room])


def test_lighting_variants_order_brightness_and_keep_the_geometry(frames) -> None:
    darker, base, brighter = (
        frames("pick_can_horizontal", v) for v in ("lighting_darker", SIM_BASE, "lighting_brighter")
    )
    assert darker["rgb"].mean() < base["rgb"].mean() < brighter["rgb"].mean()
    np.testing.assert_array_equal(darker["seg"], base["seg"])
    np.testing.assert_array_equal(brighter["seg"], base["seg"])


def test_distractor_variants_add_simplerenv_objects_only(frames) -> None:
    base = frames("pick_can_horizontal", SIM_BASE)
    less, more = (
        frames("pick_can_horizontal", "distractors"),
        frames("pick_can_horizontal", "distractors_more"),
    )
    assert (base["n_actors"], less["n_actors"], more["n_actors"]) == (1, 5, 7)
    assert base["objects"] == less["objects"] == more["objects"] == ("opened_coke_can",)
    assert base["scene_obs"].shape == less["scene_obs"].shape
    np.testing.assert_allclose(base["camera"], more["camera"], atol=1e-6)


def test_camera_variants_tilt_the_camera_only(frames) -> None:
    base = frames("pick_can_horizontal", SIM_BASE)
    for variant in ("camera_orientation_1", "camera_orientation_2"):
        other = frames("pick_can_horizontal", variant)
        assert np.linalg.norm(other["camera"][3:] - base["camera"][3:]) > 0.05  # another orientation
        np.testing.assert_allclose(other["scene_obs"], base["scene_obs"], atol=1e-4)  # the same can
    up, down = (
        frames("pick_can_horizontal", "camera_orientation_2"),
        frames("pick_can_horizontal", "camera_orientation_1"),
    )
    walls = WALLS[:3]  # a camera tilted up sees more of the walls (and less of the floor)
    assert _mask(up, *walls).mean() > _mask(base, *walls).mean() > _mask(down, *walls).mean()


def test_move_near_without_distractors_keeps_source_and_target(frames) -> None:
    three, two = frames("move_near", SIM_BASE, 13), frames("move_near", "distractors_none", 13)
    assert three["objects"] == ("opened_7up_can", "apple", "sponge") and two["objects"] == (
        "opened_7up_can",
        "sponge",
    )
    assert two["scene_obs"].shape == (2 * 7 + 10,)


def test_visual_matching_is_unchanged(frames) -> None:
    from envs.simpler.real_env import SimplerRealEnv

    env = SimplerRealEnv("pick_can_horizontal", image_size=SIZE)
    try:
        assert env.variant == "base" and env.scene.use_overlay and env.scene.stage is None
        assert env.scene.room == [] and env.scene.distractors == {}
        env.reset(seed=0, options={"episode": 0})
        assert env.scene.overlay_image is not None
        assert env.scene.agent.urdf_path.endswith(
            episode_layout("pick_can_horizontal", 0).urdf_version + ".urdf"
        )
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["cabinet_2", "cabinet_3", "lighting_brighter"])
def test_drawer_variants_build(assets, variant: str) -> None:
    from envs.simpler.real_env import SimplerRealEnv

    env = SimplerRealEnv("open_drawer_top", variant, image_size=SIZE)
    try:
        obs, info = env.reset(seed=0, options={"episode": 4})
        assert info["variant"] == variant and obs["rgb_static"].mean() > 5
        np.testing.assert_allclose(env.scene.agent.robot.pose.p[0, :2].numpy(), [0.75, 0.0], atol=1e-6)
    finally:
        env.close()


def test_bench_run_variant_aggregation_end_to_end(assets, tmp_path) -> None:
    from bench import run

    out = tmp_path / "run"
    argv = ["--suite", "simpler", "--embodiment", "simpler", "--mode", "variant_aggregation"]
    argv += ["--tasks", "pick_can_horizontal", "--variants", "sim_base,lighting_darker,camera_orientation_1"]
    argv += ["--episodes-per-variant", "1", "--policy", "random", "--workers", "1", "--quiet"]
    assert run.main([*argv, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    task = summary["tasks"]["pick_can_horizontal"]
    assert list(task["variants"]) == ["lighting_darker", "camera_orientation_1", "sim_base"]
    assert task["variants"]["camera_orientation_1"]["in_aggregate"] is False
    rates = [task["variants"][v]["rate"] for v in ("sim_base", "lighting_darker")]
    assert task["aggregate_rate"] == pytest.approx(np.mean(rates))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tasks", "pick_can_horizontal", "--variants", "disco"], "not in mode variant_aggregation"),
        (["--tasks", "put_carrot_on_plate"], "no variant aggregation"),
    ],
)
def test_bench_run_refuses_bad_variants_in_one_line(extra, message, tmp_path, capsys) -> None:
    from bench import run

    argv = ["--suite", "simpler", "--embodiment", "simpler", "--mode", "variant_aggregation", *extra]
    assert run.main([*argv, "--policy", "random", "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
