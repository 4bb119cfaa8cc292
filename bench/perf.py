"""Speed benchmarks that print figures (never timed assertions).

``python -m bench.perf env [--scene D] [--against calvin_env] [--json FILE]`` prints env steps per
second of our table with both cameras and without, and each camera's render cost, as medians over
repeats; ``--against calvin_env`` runs CALVIN's own env (a checkout through ``CALVIN_ENV_DIR``) side by
side on the same random relative actions, in interleaved repeats, and adds the ratios.
``python -m bench.perf workers [--workers 1 2 4] [--cameras]`` prints how bench.run's throughput grows
with the number of worker processes.
``python -m bench.perf simpler [--steps 20] [--image-size 224]`` prints env steps per second of the
SimplerEnv-style suite per task family, state only and with the third-person camera.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _median_ms(fn: Callable[[], object], n: int, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n * 1000)
    return statistics.median(samples)


def _steps_per_s(env, state: dict, actions: np.ndarray) -> float:
    """Steps/s of ``env`` playing ``actions`` from a reset to ``state`` (the reset is not timed)."""
    env.reset(seed=0, options={"state": state})
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return len(actions) / (time.perf_counter() - start)


def _render_ms(env, state: dict, action_sets: list[np.ndarray]) -> dict[str, float]:
    """Each camera's cost per step in motion: the median ms per step with only that camera on, less
    the median with none, over the same action sequences (a camera that caches what stays still is
    measured as it runs, not on a frozen scene)."""
    ms = {}
    for cams in (("static",), ("gripper",), ()):
        env.set_cameras(cams)
        ms[cams] = statistics.median(1000 / _steps_per_s(env, state, actions) for actions in action_sets)
    env.set_cameras(("static", "gripper"))
    return {cam: ms[(cam,)] - ms[()] for cam in ("static", "gripper")}


def bench_env(
    against: str | None,
    scene: str,
    steps: int,
    camera_steps: int,
    repeats: int,
    static_size: int,
    gripper_size: int,
) -> dict:
    """Steps/s of our table with both cameras and without, and each camera's render cost; with
    ``against`` (``calvin_env``) that backend's too, side by side, and the ratios ``ratio_<setting>``.

    Every env gets the same random relative actions (uniform in [-1, 1], a new draw per repeat) from
    the first official chain's start state; repeats alternate between the envs so that a change in
    the machine's load hits both; the figures are medians over the repeats.
    """
    from envs.calvin.backends import make_calvin_env
    from envs.calvin.chains import official_chains

    state = official_chains()[0].state
    sizes = {"static_size": static_size, "gripper_size": gripper_size}
    settings = {"cameras": (("static", "gripper"), camera_steps), "no_cameras": ((), steps)}
    # CALVIN's env first: the first PyBullet client of a process is the safest home for its robot
    backends = [against, "ours"] if against else ["ours"]
    out: dict = {
        "scene": scene,
        "against": against,
        **sizes,
        "repeats": repeats,
        "actions": "uniform random relative actions in [-1, 1]",
        "cpu_count": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
    }
    for label, (cams, n) in settings.items():
        envs = {b: make_calvin_env(b, scene, cameras=cams, **sizes) for b in backends}
        rates: dict[str, list[float]] = {b: [] for b in envs}
        action_sets = [np.random.default_rng(r).uniform(-1, 1, size=(n, 7)) for r in range(repeats)]
        try:
            for actions in action_sets:
                for b, env in envs.items():
                    rates[b].append(_steps_per_s(env, state, actions))
            if cams:
                out["render_ms"] = {b: _render_ms(env, state, action_sets) for b, env in envs.items()}
        finally:
            for env in envs.values():
                env.close()
        out[label] = {"steps": n}
        for b in backends:
            out[label] |= {f"{b}_steps_per_s": statistics.median(rates[b]), f"{b}_repeats": rates[b]}
        if against:
            out[f"ratio_{label}"] = out[label]["ours_steps_per_s"] / out[label][f"{against}_steps_per_s"]
            paired = [o / a for o, a in zip(rates["ours"], rates[against], strict=True)]
            out[f"paired_ratio_{label}"] = statistics.median(paired)
    return out


def bench_workers(
    policy: str, scene: str, chains: int, workers: list[int], cameras: bool
) -> list[dict[str, float]]:
    """Chains/s and env steps/s of bench.run's engine for each worker count (same chains each time)."""
    from bench.calvin_eval import CalvinEnvFactory, evaluate_chains
    from envs.calvin.chains import official_chains
    from envs.calvin.language import eval_instruction
    from policies.registry import make_policy

    rows = []
    for n in workers:
        pol = make_policy(policy)
        if cameras:
            pol.needs_images = True
        start = time.perf_counter()
        records = evaluate_chains(
            pol,
            official_chains()[:chains],
            scene=scene,
            workers=n,
            make_env=CalvinEnvFactory(),
            instruction_for=eval_instruction,
        )
        wall = time.perf_counter() - start
        steps = sum(sum(r["steps"]) for r in records)
        rows.append(
            {"workers": n, "wall_s": wall, "chains_per_s": chains / wall, "steps_per_s": steps / wall}
        )
        pol.close()
    return rows


def bench_simpler(steps: int, image_size: int, tasks: dict[str, str] | None = None) -> list[dict]:
    """Median ms per env step (random actions) per family, state only and with the camera."""
    from envs.simpler.env import SimplerEnv

    tasks = tasks or {"google_robot": "open_drawer_middle", "bridge": "put_carrot_on_plate"}
    rows = []
    for family, task in tasks.items():
        for cameras in ((), ("static",)):
            env = SimplerEnv(task, cameras=cameras, image_size=image_size)
            env.reset(seed=0, options={"episode": 0})
            rng = np.random.default_rng(0)
            low, high = env.action_space.low, env.action_space.high
            ms = _median_ms(lambda env=env, rng=rng, lo=low, hi=high: env.step(rng.uniform(lo, hi)), steps)
            env.close()
            rows.append({"family": family, "task": task, "camera": bool(cameras), "ms_per_step": ms})
    return rows


def _report_simpler(args: argparse.Namespace) -> None:
    print(f"SimplerEnv-style env (ManiSkill3, CPU), medians of 5 x {args.steps} steps, random actions")
    for row in bench_simpler(args.steps, args.image_size):
        camera = f"camera {args.image_size}px" if row["camera"] else "state only"
        print(
            f"  {row['family']:13s} {row['task']:22s} {camera:15s}: {row['ms_per_step']:7.1f} ms/step "
            f"({1000 / row['ms_per_step']:6.1f} steps/s)"
        )


def _report_workers(args: argparse.Namespace) -> None:
    print(
        f"bench.run engine, policy {args.policy}, scene {args.scene}, {args.chains} chains, "
        f"cameras {'on' if args.cameras else 'as the policy needs'} ({os.cpu_count()} CPUs)"
    )
    base = None
    for row in bench_workers(args.policy, args.scene, args.chains, args.workers, args.cameras):
        base = base or row["steps_per_s"]
        print(
            f"  workers={row['workers']}: {row['wall_s']:6.1f} s, {row['chains_per_s']:.2f} chains/s, "
            f"{row['steps_per_s']:7.0f} env steps/s ({row['steps_per_s'] / base:.2f}x)"
        )


def _report_env(args: argparse.Namespace) -> None:
    res = bench_env(
        args.against,
        args.scene,
        args.steps,
        args.camera_steps,
        args.repeats,
        args.static_size,
        args.gripper_size,
    )
    backends = [args.against, "ours"] if args.against else ["ours"]
    print(
        f"CALVIN-style env, {' against '.join(reversed(backends))}, scene {args.scene}, random relative "
        f"actions, medians of {args.repeats} interleaved repeats ({os.cpu_count()} CPUs, load "
        f"{res['load_avg_1m']:.1f})"
    )
    for label, text in (
        ("cameras", f"both cameras {args.static_size}+{args.gripper_size} px"),
        ("no_cameras", "no cameras"),
    ):
        row = res[label]
        rates = "   ".join(f"{b} {row[f'{b}_steps_per_s']:8.1f} steps/s" for b in reversed(backends))
        ratio = (
            f"   ratio {res[f'ratio_{label}']:.2f}x (paired {res[f'paired_ratio_{label}']:.2f}x)"
            if args.against
            else ""
        )
        print(f"  {text:28s}: {rates}{ratio} ({row['steps']} steps per repeat)")
    renders = res["render_ms"]
    print(
        "  render ms per camera        : "
        + "   ".join(f"{b} static {r['static']:.1f}, gripper {r['gripper']:.1f}" for b, r in renders.items())
    )
    if args.json is not None:
        from bench.rundir import write_json_atomic

        write_json_atomic(args.json, res)
        print(f"wrote {args.json}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    env_p = sub.add_parser("env", help="env step and render speed of the CALVIN-style suite")
    env_p.add_argument("--scene", default="D")
    env_p.add_argument("--steps", type=int, default=300, help="steps per repeat without cameras")
    env_p.add_argument("--static-size", type=int, default=200)
    env_p.add_argument("--gripper-size", type=int, default=84)
    env_p.add_argument(
        "--against",
        choices=["calvin_env"],
        help="also run this backend on the same actions and print both speeds and their ratio",
    )
    env_p.add_argument("--camera-steps", type=int, default=30, help="steps per repeat with both cameras")
    env_p.add_argument("--repeats", type=int, default=5, help="repeats (interleaved between the envs)")
    env_p.add_argument("--json", type=Path, help="also write the figures to this (new) JSON file")
    env_p.set_defaults(report=_report_env)
    wk = sub.add_parser("workers", help="bench.run throughput by number of worker processes")
    wk.add_argument("--policy", default="expert")
    wk.add_argument("--scene", default="D")
    wk.add_argument("--chains", type=int, default=12)
    wk.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    wk.add_argument(
        "--cameras", action="store_true", help="render both cameras even if the policy needs none"
    )
    wk.set_defaults(report=_report_workers)
    sp = sub.add_parser("simpler", help="env step speed of the SimplerEnv-style suite per task family")
    sp.add_argument("--steps", type=int, default=20, help="steps per repeat (5 repeats)")
    sp.add_argument("--image-size", type=int, default=224)
    sp.set_defaults(report=_report_simpler)
    args = parser.parse_args(argv)
    if getattr(args, "json", None) is not None and args.json.exists():
        parser.error(f"--json {args.json} exists; choose a new file")
    for name in ("steps", "camera_steps", "repeats"):
        if getattr(args, name, 1) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if getattr(args, "against", None) is not None:
        from envs.calvin.backends import check_backend
        from envs.calvin.official.checkout import CalvinEnvUnavailable

        try:
            check_backend(args.against, args.scene)
        except CalvinEnvUnavailable as exc:
            parser.exit(2, f"error: {exc}\n")
    args.report(args)


if __name__ == "__main__":
    main()
