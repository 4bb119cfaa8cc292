"""The CALVIN-style Gymnasium env: conformance, physical reset, determinism and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.calvin import scene as sc
from envs.calvin.env import CalvinEnv

STATE = {
    "led": 1,
    "lightbulb": 0,
    "slider": "left",
    "drawer": "open",
    "red_block": "slider_left",
    "blue_block": "table",
    "pink_block": "table",
    "grasped": 0,
}


@pytest.mark.parametrize("env_id", [envs.CALVIN_ENV_ID] + [envs.calvin_env_id(s) for s in envs.CALVIN_SCENES])
def test_check_env_on_registered_ids(env_id):
    env = gym.make(env_id, static_size=64, gripper_size=32)
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert obs["rgb_static"].shape == (64, 64, 3) and obs["rgb_gripper"].shape == (32, 32, 3)
    assert obs["robot_obs"].shape == (15,) and obs["scene_obs"].shape == (24,)
    env.close()


def test_physical_reset_matches_symbolic_state():
    env = CalvinEnv(scene="B", cameras=())
    obs, _ = env.reset(seed=3, options={"state": STATE})
    so = obs["scene_obs"]
    cfg = env.cfg
    assert so[0] == pytest.approx(cfg.slider_left_state, abs=1e-3)  # slider left
    assert so[1] == pytest.approx(sc.DRAWER_TRAVEL, abs=1e-3)  # drawer open
    assert so[4] == 0 and so[5] == 1  # lightbulb off, led on
    red = so[6:9]
    assert red[:2] == pytest.approx(cfg.slider_spots["slider_left"], abs=1e-3)
    table_xy = sorted(tuple(np.round(so[i : i + 2], 3)) for i in (12, 18))
    assert table_xy == sorted(cfg.table_spots)
    info = env.scene_info()
    assert info["blocks"]["red"]["contacts"] == {"slider_shelf"}
    assert info["blocks"]["blue"]["contacts"] == {"table"}
    assert info["robot"]["contacts"] == frozenset()  # the arm starts in the air
    # robot_obs: gripper open, last gripper action +1
    assert obs["robot_obs"][6] > 0.07 and obs["robot_obs"][14] == 1.0
    env.close()


def _rollout(env: CalvinEnv, seed: int, actions: np.ndarray) -> np.ndarray:
    obs, _ = env.reset(seed=seed, options={"state": STATE})
    out = [obs["scene_obs"].copy()]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(np.concatenate([obs["robot_obs"], obs["scene_obs"]]))
    return np.concatenate(out)


def test_same_seed_same_episode_whatever_came_before():
    actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 7)).astype(np.float32)
    env = CalvinEnv(cameras=())
    first = _rollout(env, 5, actions)
    _rollout(env, 9, actions[::-1])  # a different episode in between
    again = _rollout(env, 5, actions)
    fresh = _rollout(CalvinEnv(cameras=()), 5, actions)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, fresh)
    other_seed = _rollout(env, 6, actions)
    assert not np.array_equal(first[:24], other_seed[:24])  # block yaws differ


def test_images_show_the_scene():
    env = CalvinEnv(scene="D", static_size=96, gripper_size=48)
    obs, _ = env.reset(seed=0, options={"state": STATE})
    img = obs["rgb_static"].astype(int)
    # the blue and magenta blocks on the table and the desk are visible: the image is not uniform
    # (the red block lies in the left compartment, behind the door that the "left" slider puts there)
    assert img.std() > 20
    magenta_pixels = ((img[..., 0] > 150) & (img[..., 1] < 80) & (img[..., 2] > 150)).sum()
    blue_pixels = ((img[..., 2] > 150) & (img[..., 0] < 80)).sum()
    assert magenta_pixels > 3 and blue_pixels > 3
    env.close()


def test_static_camera_layers_match_a_whole_render():
    """The static camera draws the fixed links once, the parts at rest only when one changes, and
    each frame only what moves, inside its rectangle: over steps that move the arm, a drawer moved
    from outside and an LED switched, the image equals a render of the whole scene except for a few
    pixels where surfaces of two layers meet at equal depth, and layering leaves every shape's
    colour as it was (a twin env stepped without cameras renders the same whole image)."""
    from envs.calvin.camera import render_image

    env = CalvinEnv(scene="D", cameras=("static",), static_size=96)
    twin = CalvinEnv(scene="D", cameras=(), static_size=96)
    obs, _ = env.reset(seed=0, options={"state": STATE})
    twin.reset(seed=0, options={"state": STATE})
    cam, rng = env.static_camera, np.random.default_rng(0)
    first, led, drawn = obs["rgb_static"], env.led, []
    for step in range(30):
        whole = render_image(env.cid, cam.size, cam.view, cam.proj)
        assert (obs["rgb_static"] != whole).any(axis=-1).sum() <= 3, step
        drawn.append(dict(cam.layers.drawn))
        if step == 10:
            env.led = twin.led = 1 - env.led  # a resting part's colour change shows
        if step == 20:  # a resting part moved from outside the env
            for e in (env, twin):
                p.resetJointState(e.desk, e.links["drawer"], 0.05, physicsClientId=e.cid)
                e.refresh_state()
        action = rng.uniform(-1, 1, 7).astype(np.float32)
        obs, *_ = env.step(action)
        twin.step(action)
    assert env.led != led
    assert (first != obs["rgb_static"]).any(axis=-1).sum() > 50  # the arm moved in the layered image
    # the layers did their work: the desk's six parts cached at rest, the arm drawn in a rectangle
    assert max(d["resting"] for d in drawn) >= 6 and min(d["pixels"] for d in drawn[5:]) < 96 * 96
    assert sum(d["redraw"] for d in drawn) >= 3  # after the first rest, the LED and the drawer
    twin._sync_light_colours()
    assert (
        render_image(env.cid, 96, cam.view, cam.proj) == render_image(twin.cid, 96, cam.view, cam.proj)
    ).all()
    env.close()
    twin.close()


def test_relative_action_moves_the_target_by_the_scale():
    env = CalvinEnv(cameras=())
    obs, _ = env.reset(seed=0, options={"state": STATE})
    start = obs["robot_obs"][:3].copy()
    action = np.array([1, 0, 0, 0, 0, 0, 1], dtype=np.float32)
    for _ in range(5):
        obs, *_ = env.step(action)
    for _ in range(10):
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, 1], dtype=np.float32))
    assert obs["robot_obs"][0] - start[0] == pytest.approx(5 * 0.02, abs=0.004)
    assert obs["robot_obs"][1:3] == pytest.approx(start[1:3], abs=0.004)


def test_gripper_closes_on_minus_one():
    env = CalvinEnv(cameras=())
    obs, _ = env.reset(seed=0, options={"state": STATE})
    for _ in range(15):
        obs, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32))
    assert obs["robot_obs"][6] < 0.005 and obs["robot_obs"][14] == -1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="valid scenes: A, B, C, D"):
        CalvinEnv(scene="E")
    with pytest.raises(ValueError, match="valid cameras"):
        CalvinEnv(cameras=("top",))
    with pytest.raises(ValueError, match="action_mode"):
        CalvinEnv(action_mode="joint")
    env = CalvinEnv(cameras=())
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(7))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(7,\), got \(6,\)"):
        env.step(np.zeros(6))
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([0, 0, np.nan, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match="valid tasks"):
        env.begin_subtask("fly_away")
    with pytest.raises(ValueError, match="valid: 'state', 'task'"):
        env.reset(options={"states": STATE})
    with pytest.raises(ValueError, match="valid start locations"):
        env.reset(options={"state": {**STATE, "red_block": "grasped"}})


def test_subtask_success_reported_in_info():
    env = CalvinEnv(cameras=(), action_mode="absolute")
    obs, info = env.reset(seed=0, options={"state": STATE, "task": "turn_off_led"})
    assert info["success"] is False
    # press the button straight down with an absolute target
    cfg = env.cfg
    target = np.array([cfg.button_x, sc.BUTTON_Y, 0.55, np.pi, 0, np.pi / 2, -1], dtype=np.float32)
    for _ in range(40):
        obs, reward, terminated, truncated, info = env.step(target)
    for z in np.linspace(0.55, sc.TABLE_Z + 0.0, 25):
        target[2] = z
        obs, reward, terminated, truncated, info = env.step(target)
        if terminated:
            break
    assert info["success"] and reward == 1.0 and terminated
    assert obs["scene_obs"][5] == 0
