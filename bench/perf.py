"""Speed benchmarks that print figures (never timed assertions).

``python -m bench.perf env [--scene D] [--steps 300]`` prints env steps per second with both cameras,
with cameras off, and the render cost per camera, as medians over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np


def _median_ms(fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n * 1000)
    return statistics.median(samples)


def bench_env(scene: str, steps: int, static_size: int, gripper_size: int) -> dict[str, float]:
    from envs.calvin.chains import official_chains
    from envs.calvin.env import CalvinEnv

    state = official_chains()[0].state
    rng = np.random.default_rng(0)
    actions = rng.uniform(-0.3, 0.3, size=(steps, 7)).astype(np.float32)
    results: dict[str, float] = {}
    for label, cams in (("both_cameras", ("static", "gripper")), ("no_cameras", ())):
        env = CalvinEnv(scene=scene, cameras=cams, static_size=static_size, gripper_size=gripper_size)
        env.reset(seed=0, options={"state": state, "task": "open_drawer"})
        it = iter(np.tile(actions, (20, 1)))
        results[f"{label}_ms_per_step"] = _median_ms(lambda env=env, it=it: env.step(next(it)), steps // 5)
        if cams:
            results["static_render_ms"] = _median_ms(lambda env=env: env.static_camera.render(env.cid), 20)
            results["gripper_render_ms"] = _median_ms(
                lambda env=env: env.gripper_camera.render(env.cid, env.robot.uid, env.robot.hand_link), 20
            )
        env.close()
    results["both_cameras_steps_per_s"] = 1000 / results["both_cameras_ms_per_step"]
    results["no_cameras_steps_per_s"] = 1000 / results["no_cameras_ms_per_step"]
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    env_p = sub.add_parser("env", help="env step and render speed of the CALVIN-style suite")
    env_p.add_argument("--scene", default="D")
    env_p.add_argument("--steps", type=int, default=300)
    env_p.add_argument("--static-size", type=int, default=200)
    env_p.add_argument("--gripper-size", type=int, default=84)
    args = parser.parse_args(argv)
    res = bench_env(args.scene, args.steps, args.static_size, args.gripper_size)
    print(
        f"CALVIN-style env, scene {args.scene}, static {args.static_size}px + gripper {args.gripper_size}px "
        "(medians of 5 repeats)"
    )
    print(
        f"  both cameras : {res['both_cameras_ms_per_step']:.2f} ms/step  ({res['both_cameras_steps_per_s']:.0f} steps/s)"
    )
    print(
        f"  no cameras   : {res['no_cameras_ms_per_step']:.3f} ms/step  ({res['no_cameras_steps_per_s']:.0f} steps/s)"
    )
    print(
        f"  static render: {res['static_render_ms']:.2f} ms   gripper render: {res['gripper_render_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
