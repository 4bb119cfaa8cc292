"""Measured fidelity of our play table against CALVIN's own env, on matched states.

``python -m bench.fidelity calvin --json FILE [--scenes A B C D] [--states 20] [--figures DIR]``
(what it measures: README, "Measured fidelity against CALVIN's env"). For the start states of the
first N official chains, CALVIN's env is reset as its evaluation resets it and our table is put in
exactly that state (:func:`match_state`), nothing stepped in between; then both cameras' per-object
IoU (every body/link mapped to one name of :data:`OBJECTS`; :data:`EXTRA` reported apart), the mean
absolute RGB difference, every part's position difference in mm and the oracle's agreement are
taken (:func:`measure`), averaged per object over the states where it shows, then over objects.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bench.fidelity.measure import CAMERAS, TARGETS, measure
from envs.calvin.official.objects import OBJECTS


def print_table(result: dict[str, Any]) -> None:
    scenes = result["scenes"]
    print(
        f"fidelity against CALVIN's env ({result['states_per_scene']} matched states per scene; "
        f"targets: static IoU >= {TARGETS['static_iou']}, gripper >= {TARGETS['gripper_iou']}, "
        f"parts within {TARGETS['max_part_error_mm']:g} mm, oracle 100 %)"
    )
    print(f"{'':24s}" + "".join(f"{s:>9s}" for s in scenes) + f"{'all':>9s}")
    rows = [
        ("static IoU", "static_iou", "{:9.3f}"),
        ("gripper IoU", "gripper_iou", "{:9.3f}"),
        ("static RGB |diff|", "static_rgb_mae", "{:9.1f}"),
        ("gripper RGB |diff|", "gripper_rgb_mae", "{:9.1f}"),
        ("max part error (mm)", "max_part_error_mm", "{:9.2f}"),
    ]
    for label, key, fmt in rows:
        cells = [result["per_scene"][s][key] for s in scenes] + [result[key]]
        print(f"{label:24s}" + "".join(fmt.format(c) for c in cells))
    for cam in CAMERAS:
        print(f"{cam} IoU per object:")
        for name in OBJECTS:
            cells = [result["per_scene"][s][f"{cam}_iou_per_object"].get(name) for s in scenes]
            cells.append(result[f"{cam}_iou_per_object"].get(name))
            print(f"  {name:22s}" + "".join(f"{c:9.3f}" if c is not None else f"{'-':>9s}" for c in cells))
    worst = sorted(result["part_error_mm"].items(), key=lambda kv: -kv[1])[:5]
    print("largest part errors (mm): " + ", ".join(f"{k} {v:.2f}" for k, v in worst))
    print(
        f"oracle agreement {result['oracle_agreement']:.4%} ({result['oracle']['pairs']} pairs x 34 tasks, "
        f"reference {result['oracle']['source']})"
    )
    met = result["meets_targets"]
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in met.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fidelity",
        description="Measured fidelity of our play table against CALVIN's own env.",
    )
    sub = parser.add_subparsers(dest="what", required=True)
    cp = sub.add_parser(
        "calvin", help="our play table against CALVIN's own env (needs a calvin_env checkout)"
    )
    cp.add_argument("--json", type=Path, required=True, help="write the result here (a new file)")
    cp.add_argument("--scenes", nargs="+", default=["A", "B", "C", "D"], choices=["A", "B", "C", "D"])
    cp.add_argument(
        "--states", type=int, default=20, help="matched states per scene (official chains' starts)"
    )
    cp.add_argument(
        "--figures", type=Path, default=Path("results/figures"), help="folder of the side-by-side images"
    )
    cp.add_argument(
        "--oracle-pairs", type=int, default=None, help="synthetic pairs of the oracle check (default 3000)"
    )
    args = parser.parse_args(argv)
    if args.json.exists():
        parser.error(f"--json {args.json} exists; choose a new file")
    if args.states < 1:
        parser.error(f"--states must be >= 1, got {args.states}")
    from bench.rundir import write_json_atomic
    from envs.calvin.official.checkout import CalvinEnvUnavailable

    try:
        result = measure(args.scenes, args.states, args.figures, args.oracle_pairs)
    except CalvinEnvUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_table(result)
    write_json_atomic(args.json, result)
    print(f"wrote {args.json}; figures in {args.figures}")
    return 0
