"""Sim-vs-real agreement (bench.simreal, bench.simreal_cli): metrics, the real-results CSV, SimplerEnv-style
runs and the ``python -m bench.simreal`` command on fixture runs.

:func:`write_simpler_run` writes a run folder in ``bench.run --suite simpler``'s format; the leaderboard and
figure tests use it too.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from bench.results import RunFormatError
from bench.simreal import (
    REAL_TASK_NAMES,
    REFERENCE_CSV,
    RealResultsError,
    load_real_results,
    load_simpler_run,
    match_policy,
    mmrv,
    pearson_r,
    simpler_rows,
)
from bench.simreal_cli import main as simreal_main
from bench.stats import wilson_interval
from envs.simpler import GROUPS, TASKS

ROOT = Path(__file__).resolve().parent.parent
VA_VARIANTS = (
    "base",
    "lighting_brighter",
    "lighting_darker",
    "table_texture_1",
    "table_texture_2",
    "background_1",
    "background_2",
    "distractors_more",
    "distractors_fewer",
    "camera_orientation_1",
    "camera_orientation_2",
)
TASK_GROUP = {task: group for group, tasks in GROUPS.items() for task in tasks}


def write_simpler_run(
    folder: Path,
    policy: str,
    successes: Mapping[str, int | Sequence[int]],
    mode: str = "visual_matching",
    trials: int | Mapping[str, int] = 10,
    grasps: Mapping[str, int | Sequence[int]] | None = None,
    config_extra: dict | None = None,
) -> Path:
    """A SimplerEnv-style run folder (config.json, episodes.jsonl, summary.json).

    Args:
        successes: Task -> successes per variant (one number in visual matching, 11 in variant
            aggregation, in :data:`VA_VARIANTS` order; the last two are the camera variants).
        trials: Trials per variant (one number, or per task).
        grasps: Bridge task -> episodes with the source object grasped, per variant (partial success).
    """
    variants = ("base",) if mode == "visual_matching" else VA_VARIANTS
    tasks, groups = {}, {}
    for task, counts in successes.items():
        counts = [int(counts)] if np.ndim(counts) == 0 else [int(k) for k in counts]
        assert len(counts) == len(variants)
        n = trials if isinstance(trials, int) else trials[task]
        group = TASK_GROUP[task]
        family = TASKS[GROUPS[group][0]].family
        grasp = (grasps or {}).get(task)
        grasp = None if grasp is None else ([int(grasp)] if np.ndim(grasp) == 0 else [int(g) for g in grasp])
        entry_variants = {}
        for i, (name, k) in enumerate(zip(variants, counts, strict=True)):
            low, high = wilson_interval(k, n)
            entry_variants[name] = {
                "successes": k,
                "trials": n,
                "rate": k / n,
                "ci_low": low,
                "ci_high": high,
                "partial_rate": None if grasp is None else grasp[i] / n,
                "in_aggregate": not name.startswith("camera"),
            }
        counting = [v for v in entry_variants.values() if v["in_aggregate"]]
        k_all, n_all = sum(counts), n * len(counts)
        low, high = wilson_interval(k_all, n_all)
        tasks[task] = {
            "family": family,
            "group": group,
            "successes": k_all,
            "trials": n_all,
            "rate": k_all / n_all,
            "ci_low": low,
            "ci_high": high,
            "partial_rate": None if grasp is None else sum(grasp) / n_all,
            "aggregate_rate": float(np.mean([v["rate"] for v in counting])),
            "variants": entry_variants,
        }
        groups.setdefault(group, {"family": family, "tasks": []})["tasks"].append(task)
    for entry in groups.values():
        members = [tasks[t] for t in entry["tasks"]]
        entry["rate"] = float(np.mean([m["aggregate_rate"] for m in members]))
        partials = [
            np.mean([v["partial_rate"] for v in m["variants"].values() if v["in_aggregate"]])
            for m in members
            if m["partial_rate"] is not None
        ]
        entry["partial_rate"] = float(np.mean(partials)) if partials else None
    summary = {
        "suite": "simpler",
        "policy": policy,
        "mode": mode,
        "tasks": tasks,
        "groups": groups,
        "overall": float(np.mean([g["rate"] for g in groups.values()])),
        "seed": 0,
        "wall_time_s": 1.0,
        "env_steps_per_s": 100.0,
    }
    folder.mkdir(parents=True, exist_ok=True)
    config = {"suite": "simpler", "policy": policy, "mode": mode, "version": "0.1.0", **(config_extra or {})}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "episodes.jsonl").write_text("")
    (folder / "summary.json").write_text(json.dumps(summary, indent=1))
    return folder


# --- metrics, worked out by hand -------------------------------------------------------------------


def test_mmrv_and_pearson_four_policies_by_hand() -> None:
    sim, real = [0.2, 0.4, 0.6, 0.8], [0.3, 0.1, 0.7, 0.5]
    # Sim order 0 < 1 < 2 < 3; real order 1 < 0 < 3 < 2. Rank violations: pair (0, 1) (sim 0.2 < 0.4,
    # real 0.3 > 0.1; real gap 0.2) and pair (2, 3) (sim 0.6 < 0.8, real 0.7 > 0.5; real gap 0.2); the other
    # four pairs agree. Max violation per policy: 0.2, 0.2, 0.2, 0.2 -> MMRV = 0.8 / 4 = 0.2.
    assert mmrv(sim, real) == pytest.approx(0.2)
    # Centred: S - 0.5 = [-0.3, -0.1, 0.1, 0.3], R - 0.4 = [-0.1, -0.3, 0.3, 0.1].
    # sum products = 0.03 + 0.03 + 0.03 + 0.03 = 0.12; sum S^2 = 0.2, sum R^2 = 0.2 -> r = 0.12 / 0.2 = 0.6.
    assert pearson_r(sim, real) == pytest.approx(0.6, abs=1e-6)


def test_mmrv_is_weighted_by_the_second_argument_by_hand() -> None:
    sim, real = [0.9, 0.5, 0.1], [0.2, 0.6, 0.4]
    # Sim order 0 > 1 > 2; real order 1 > 2 > 0. Violations: (0, 1): real gap |0.2 - 0.6| = 0.4;
    # (0, 2): real gap |0.2 - 0.4| = 0.2; (1, 2) agrees. Max per policy: 0.4, 0.4, 0.2 -> MMRV 1.0 / 3.
    assert mmrv(sim, real) == pytest.approx(1.0 / 3)
    # Swapped, the same pairs are violated but weighted by the sim gaps: (0, 1): 0.4, (0, 2): 0.8.
    # Max per policy: 0.8, 0.4, 0.8 -> 2.0 / 3.
    assert mmrv(real, sim) == pytest.approx(2.0 / 3)
    # Centred: S - 0.5 = [0.4, 0, -0.4], R - 0.4 = [-0.2, 0.2, 0]; sum products = -0.08;
    # sum S^2 = 0.32, sum R^2 = 0.08, sqrt(0.32 * 0.08) = 0.16 -> r = -0.08 / 0.16 = -0.5 (symmetric).
    assert pearson_r(sim, real) == pytest.approx(-0.5, abs=1e-6)
    assert pearson_r(real, sim) == pytest.approx(-0.5, abs=1e-6)


def test_metrics_with_two_policies_and_constant_inputs() -> None:
    # Two policies in the same order: no violation; centred vectors [-0.15, 0.15] and [-0.1665, 0.1665]
    # are parallel -> r = 1 up to the 1e-8 in the denominator.
    assert mmrv([0.0, 0.3], [0.0, 0.333]) == 0.0
    assert pearson_r([0.0, 0.3], [0.0, 0.333]) == pytest.approx(1.0, abs=1e-6)
    # Constant sim: every "S_i > S_j" is false, so each real-better policy is violated by its real gap:
    # policy 1 (0.9 > 0.1) gets 0.8, policy 0 gets 0 -> 0.4; r = 0 / (0 + 1e-8) = 0.
    assert mmrv([0.5, 0.5], [0.1, 0.9]) == pytest.approx(0.4)
    assert pearson_r([0.5, 0.5], [0.1, 0.9]) == 0.0


# --- the real-results CSV --------------------------------------------------------------------------


def test_reference_csv_holds_the_reference_numbers() -> None:
    real = load_real_results(REFERENCE_CSV)
    assert list(real.columns) == ["policy", "task", "success", "partial"]
    value = real.set_index(["policy", "task"])
    assert set(real["policy"]) == {
        "RT-1 (converged)",
        "RT-1 (15%)",
        "RT-1-X",
        "Octo-base",
        "RT-2-X",
        "RT-1 (begin)",
        "Octo-small",
    }
    assert value.loc[("RT-1 (converged)", "pick_coke_can"), "success"] == 0.853
    assert value.loc[("RT-2-X", "move_near"), "success"] == 0.733
    assert value.loc[("RT-1 (15%)", "open_drawer"), "success"] == 0.704
    assert value.loc[("Octo-base", "close_drawer"), "success"] == 0.519
    assert value.loc[("RT-1-X", "place_apple_in_top_drawer"), "success"] == 0.407
    assert value.loc[("RT-1 (begin)", "place_apple_in_top_drawer"), "success"] == 0.0
    assert value.loc[("RT-1-X", "pick_can_vertical"), "success"] == 0.56
    assert value.loc[("Octo-small", "stack_green_on_yellow"), ["success", "partial"]].tolist() == [
        0.125,
        0.583,
    ]
    assert value.loc[("RT-1-X", "put_spoon_on_towel"), "partial"] == 0.042
    assert len(real) == 6 * 5 + 3 * 3 + 3 * 4
    # Partial success is given for the Bridge rows only.
    bridge = real["task"].isin([g for g, tasks in GROUPS.items() if TASKS[tasks[0]].family == "bridge"])
    assert real.loc[bridge, "partial"].notna().all() and real.loc[~bridge, "partial"].isna().all()
    # The orientation numbers average to the coke-can numbers (.96 + .88 + .72) / 3 = .853.
    for policy in ("RT-1 (converged)", "RT-1-X", "Octo-base"):
        mean = np.mean(
            [value.loc[(policy, f"pick_can_{o}"), "success"] for o in ("horizontal", "vertical", "standing")]
        )
        assert mean == pytest.approx(value.loc[(policy, "pick_coke_can"), "success"], abs=1e-3)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["empty file", "policy,task,success,partial"]),
        (
            "policy,task,rate\n",
            [":1:", "expected the header columns policy,task,success,partial", "got policy,task,rate"],
        ),
        ("policy,task,success,partial\n", ["no rows after the header"]),
        ("policy,task,success,partial\nA,pick_coke_can,0.5\n", [":2:", "expected 4 columns, got 3"]),
        ("policy,task,success,partial\n,pick_coke_can,0.5,\n", [":2:", "column 'policy'"]),
        (
            "policy,task,success,partial\nA,pick_coke_can,0.5,\n\nA,coke_can,0.5,\n",
            [":4:", "column 'task'", "unknown task 'coke_can'", "valid names: pick_coke_can, move_near"],
        ),
        (
            "policy,task,success,partial\nA,move_near,85.3,\n",
            [":2:", "column 'success'", "[0, 1]", "'85.3'", "0.853"],
        ),
        ("policy,task,success,partial\nA,move_near,-0.1,\n", [":2:", "column 'success'", "got '-0.1'"]),
        ("policy,task,success,partial\nA,move_near,high,\n", [":2:", "column 'success'", "got 'high'"]),
        ("policy,task,success,partial\nA,move_near,,\n", [":2:", "column 'success'", "empty cell"]),
        ("policy,task,success,partial\nA,put_spoon_on_towel,0.2,1.5\n", [":2:", "column 'partial'", "'1.5'"]),
        (
            "policy,task,success,partial\nA,move_near,0.2,\nA,move_near,0.3,\n",
            [":3:", "policy 'A', task 'move_near' already given on line 2"],
        ),
    ],
)
def test_real_results_errors_name_file_line_and_column(
    tmp_path: Path, text: str, fragments: list[str]
) -> None:
    path = tmp_path / "real.csv"
    path.write_text(text)
    with pytest.raises(RealResultsError) as info:
        load_real_results(path)
    message = str(info.value)
    assert str(path) in message and isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_real_results_column_order_quotes_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "real.csv"
    path.write_text(
        'task,partial,policy,success\nput_carrot_on_plate,0.5,"Octo, base",0.25\nmove_near,,B,1\n'
    )
    real = load_real_results(path)
    assert real.to_dict("records")[0] == {
        "policy": "Octo, base",
        "task": "put_carrot_on_plate",
        "success": 0.25,
        "partial": 0.5,
    }
    assert math.isnan(real["partial"][1]) and real["success"][1] == 1.0
    assert "pick_can_standing" in REAL_TASK_NAMES and "put_eggplant_in_basket" in REAL_TASK_NAMES
    with pytest.raises(RealResultsError, match="cannot read the real-world results"):
        load_real_results(tmp_path / "missing.csv")


# --- SimplerEnv-style runs -------------------------------------------------------------------------


def test_simpler_rows_group_and_task_level(tmp_path: Path) -> None:
    # Variant aggregation, 10 trials per variant. pick_can_horizontal: 9 counting variants with
    # 5 successes each (aggregate 0.5), camera variants 1 and 3 (camera 0.2); vertical: 7 each (0.7),
    # camera 0 and 0; standing: 3 each (0.3), camera 1 and 1.
    counts = {
        "pick_can_horizontal": [5] * 9 + [1, 3],
        "pick_can_vertical": [7] * 9 + [0, 0],
        "pick_can_standing": [3] * 9 + [1, 1],
        "put_carrot_on_plate": [2] * 4 + [4] * 5 + [0, 0],  # (8 + 20) / 90 = 0.3111...
    }
    grasps = {"put_carrot_on_plate": [6] * 9 + [1, 1]}
    folder = write_simpler_run(tmp_path / "va", "p", counts, mode="variant_aggregation", grasps=grasps)
    run = load_simpler_run(folder)
    groups = {r["group"]: r for r in simpler_rows(run)}
    coke = groups["pick_coke_can"]
    # Group rate (0.5 + 0.7 + 0.3) / 3 = 0.5 = pooled 135 / 270 over the 27 counting cells of 10 trials.
    assert coke["rate"] == pytest.approx(0.5) and coke["trials"] == 270
    assert (coke["low"], coke["high"]) == pytest.approx(wilson_interval(135, 270))
    assert coke["camera"] == pytest.approx((0.2 + 0.0 + 0.1) / 3) and coke["partial"] is None
    carrot = groups["put_carrot_on_plate"]
    assert carrot["family"] == "bridge" and carrot["rate"] == pytest.approx(28 / 90)
    assert (carrot["low"], carrot["high"]) == pytest.approx(wilson_interval(28, 90))
    assert carrot["partial"] == pytest.approx(0.6) and carrot["camera"] == 0.0
    tasks = {r["task"]: r for r in simpler_rows(run, "task")}
    assert list(tasks) == [
        "pick_can_horizontal",
        "pick_can_vertical",
        "pick_can_standing",
        "put_carrot_on_plate",
    ]
    assert tasks["pick_can_vertical"]["rate"] == pytest.approx(0.7)
    assert (tasks["pick_can_vertical"]["low"], tasks["pick_can_vertical"]["high"]) == pytest.approx(
        wilson_interval(63, 90)
    )
    assert tasks["put_carrot_on_plate"]["partial"] == pytest.approx(0.6)  # counting variants only


def test_unequal_trials_give_no_interval(tmp_path: Path) -> None:
    folder = write_simpler_run(
        tmp_path / "vm",
        "p",
        {"open_drawer_top": 3, "open_drawer_middle": 5},
        trials={"open_drawer_top": 10, "open_drawer_middle": 20},
    )
    row = simpler_rows(load_simpler_run(folder))[0]
    # Mean of 0.3 and 0.25 = 0.275, not the pooled 8 / 30: no interval.
    assert row["rate"] == pytest.approx(0.275) and row["low"] is None and row["high"] is None


def test_simpler_run_errors(tmp_path: Path) -> None:
    folder = write_simpler_run(tmp_path / "r", "p", {"move_near": 3})
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps({**summary, "suite": "calvin_like"}))
    with pytest.raises(RunFormatError, match="suite 'calvin_like' is not a SimplerEnv-style run"):
        load_simpler_run(folder)
    (folder / "summary.json").write_text(json.dumps({**summary, "mode": "sim"}))
    with pytest.raises(
        RunFormatError, match="key 'mode' must be one of visual_matching, variant_aggregation"
    ):
        load_simpler_run(folder)
    broken = json.loads(json.dumps(summary))
    broken["tasks"]["move_near"]["successes"] = 30
    (folder / "summary.json").write_text(json.dumps(broken))
    with pytest.raises(RunFormatError, match=r"tasks.move_near: key 'successes' must be 0..trials, got 30"):
        load_simpler_run(folder)
    broken = json.loads(json.dumps(summary))
    del broken["groups"]["move_near"]["rate"]
    (folder / "summary.json").write_text(json.dumps(broken))
    with pytest.raises(RunFormatError, match=r"summary.json: groups.move_near: key 'rate' is missing"):
        load_simpler_run(folder)


def test_match_policy_order_and_normalisation(tmp_path: Path) -> None:
    policies = ["RT-1 (converged)", "RT-1-X", "Octo-base"]
    run = load_simpler_run(write_simpler_run(tmp_path / "rt1_converged", "RT-1-X", {"move_near": 1}))
    assert match_policy(run, policies) == ("RT-1 (converged)", "folder name")  # folder before summary
    assert match_policy(run, policies, {"rt1_converged": "octo base"}) == ("Octo-base", "--name")
    assert match_policy(run, policies, {str(tmp_path / "rt1_converged"): "RT-1-X"}) == ("RT-1-X", "--name")
    other = load_simpler_run(write_simpler_run(tmp_path / "run7", "rt-1-x", {"move_near": 1}))
    assert match_policy(other, policies) == ("RT-1-X", "summary policy")
    assert match_policy(
        load_simpler_run(write_simpler_run(tmp_path / "x", "expert", {"move_near": 1})), policies
    ) == (None, "")
    with pytest.raises(ValueError, match="no policy 'RT-3'"):
        match_policy(run, policies, {"rt1_converged": "RT-3"})


# --- the command -----------------------------------------------------------------------------------


@pytest.fixture
def simpler_runs(tmp_path: Path) -> Path:
    """Four visual-matching runs (10 trials per task) matched to reference policies three ways, plus a
    variant-aggregation run and a CALVIN run under the same root.

    Sim rates:              pick h / v / s -> group    move_near  close_drawer_top  put_spoon (partial)
    rt1_converged            .9 / .8 / .7  -> .8        .6          .9               -
    rt1x                     .8 / .5 / .6  -> .6333     .4          -                0 (.1)
    octo (--name Octo-base)  .4 / .2 / .3  -> .3        .5          -                .3 (.5)
    run_d (policy RT-2-X)    .9 / .9 / .9  -> .9        .7          -                -
    """
    root = tmp_path / "runs"
    pick = ("pick_can_horizontal", "pick_can_vertical", "pick_can_standing")
    write_simpler_run(
        root / "rt1_converged",
        "rt1",
        {**dict(zip(pick, (9, 8, 7), strict=True)), "move_near": 6, "close_drawer_top": 9},
    )
    write_simpler_run(
        root / "rt1x",
        "rt1x",
        {**dict(zip(pick, (8, 5, 6), strict=True)), "move_near": 4, "put_spoon_on_towel": 0},
        grasps={"put_spoon_on_towel": 1},
    )
    write_simpler_run(
        root / "octo",
        "octo",
        {**dict(zip(pick, (4, 2, 3), strict=True)), "move_near": 5, "put_spoon_on_towel": 3},
        grasps={"put_spoon_on_towel": 5},
    )
    write_simpler_run(root / "run_d", "RT-2-X", {**dict(zip(pick, (9, 9, 9), strict=True)), "move_near": 7})
    write_simpler_run(root / "va" / "octo_va", "octo", {"move_near": [5] * 11}, mode="variant_aggregation")
    calvin = root / "calvin_run"
    calvin.mkdir()
    (calvin / "summary.json").write_text(json.dumps({"suite": "calvin", "policy": "x"}))
    return root


def test_command_end_to_end(simpler_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "agreement.json"
    code = simreal_main(
        [
            "--runs",
            str(simpler_runs),
            "--name",
            "octo=Octo-base",
            "--mode",
            "visual_matching",
            "--json",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (
        "left out 1 run(s) of other suites" in captured.err
        and "left out 1 run(s) of other modes" in captured.err
    )
    result = json.loads(out.read_text())
    assert result["mode"] == "visual_matching" and result["real_results"] == str(REFERENCE_CSV)
    how = {Path(r["run"]).name: (r["policy"], r["matched_by"]) for r in result["runs"]}
    assert how == {
        "rt1_converged": ("RT-1 (converged)", "folder name"),
        "rt1x": ("RT-1-X", "folder name"),
        "octo": ("Octo-base", "--name"),
        "run_d": ("RT-2-X", "summary policy"),
    }
    groups = result["groups"]
    assert list(groups) == ["pick_coke_can", "move_near", "put_spoon_on_towel"]
    coke = groups["pick_coke_can"]
    assert coke["policies"] == ["Octo-base", "RT-1 (converged)", "RT-1-X", "RT-2-X"]
    assert coke["sim"] == pytest.approx([0.3, 0.8, 1.9 / 3, 0.9]) and coke["real"] == [
        0.293,
        0.853,
        0.76,
        0.907,
    ]
    # Same order in sim and real (RT-2-X > RT-1 conv. > RT-1-X > Octo-base): MMRV 0.
    assert coke["mmrv"] == 0.0 and coke["pearson_r"] == pytest.approx(
        np.corrcoef(coke["sim"], coke["real"])[0, 1], abs=1e-6
    )
    # move_near, sim .5 .6 .4 .7 vs real .35 .633 .45 .733: only RT-1-X vs Octo-base is swapped (sim .4 < .5,
    # real .45 > .35, real gap .1); max violations 0.1 (Octo), 0, 0.1 (RT-1-X), 0 -> MMRV 0.05.
    assert groups["move_near"]["mmrv"] == pytest.approx(0.05) and groups["move_near"]["n_policies"] == 4
    # put_spoon_on_towel: two policies in the same order on success (0 vs .3; 0 vs .333) and on partial
    # success (.1 vs .5; .042 vs .5): MMRV 0, r = 1 on both.
    spoon = groups["put_spoon_on_towel"]
    assert (
        spoon["n_policies"] == 2
        and spoon["mmrv"] == 0.0
        and spoon["pearson_r"] == pytest.approx(1.0, abs=1e-6)
    )
    assert spoon["partial_mmrv"] == 0.0 and spoon["partial_pearson_r"] == pytest.approx(1.0, abs=1e-6)
    assert "partial_mmrv" not in groups["move_near"]
    # Standing coke can: RT-1 conv. .7 > RT-1-X .6 in sim but .72 < .84 in real (gap .12): (.12 + .12 + 0) / 3.
    assert result["tasks"]["pick_can_standing"]["mmrv"] == pytest.approx(0.08)
    assert result["tasks"]["pick_can_horizontal"]["n_policies"] == 3  # RT-2-X has no orientation numbers
    assert result["skipped"] == {
        "close_drawer": "1 matched policy with sim and real numbers (RT-1 (converged)); needs at least 2"
    }
    assert result["overall"]["n_groups"] == 3
    assert result["overall"]["mmrv"] == pytest.approx(0.05 / 3)
    assert result["overall"]["pearson_r"] == pytest.approx(np.mean([g["pearson_r"] for g in groups.values()]))
    lines = captured.out.splitlines()
    assert any(line.split()[:5] == ["group", "move_near", "google_robot", "4", "0.050"] for line in lines)
    assert any(line.startswith("all") and "mean of 3 group(s)" in line and "0.017" in line for line in lines)
    assert any(
        line.split()[:4] == ["group", "put_spoon_on_towel", "bridge", "2"] and line.split()[-2] == "0.000"
        for line in lines
    )
    assert "skipped close_drawer: 1 matched policy" in captured.out


def test_command_errors(simpler_runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def run(*argv: str) -> tuple[int, str]:
        code = simreal_main(list(argv))
        return code, capsys.readouterr().err

    root = str(simpler_runs)
    code, err = run("--runs", root)
    assert code == 1 and "mix evaluation modes" in err and "pass --mode" in err
    code, err = run("--runs", root, "--mode", "visual_matching")
    assert (
        code == 1 and "run " in err and "folder 'octo', policy 'octo'" in err and "--name octo=POLICY" in err
    )
    code, err = run("--runs", root, "--mode", "visual_matching", "--name", "octo=Octo-large")
    assert code == 1 and "no policy 'Octo-large'" in err and "RT-1-X" in err
    code, err = run(
        "--runs", root, "--mode", "visual_matching", "--name", "octo=Octo-base", "--name", "nothere=RT-1-X"
    )
    assert code == 1 and "'nothere' is none of the runs" in err
    code, err = run("--runs", root, "--mode", "visual_matching", "--name", "octo=RT-1-X")
    assert code == 1 and "both match policy 'RT-1-X'" in err
    code, err = run("--runs", root, "--mode", "visual_matching", "--name", "octo")
    assert code == 1 and "expected DIR=POLICY" in err
    code, err = run("--runs", str(simpler_runs / "calvin_run"))
    assert code == 1 and "is not a SimplerEnv-style run" in err
    code, err = run("--runs", str(tmp_path / "missing"))
    assert code == 1 and "no such folder" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("policy,task,success,partial\nRT-1-X,pick_coke_can,76,\n")
    code, err = run("--runs", str(simpler_runs / "rt1x"), "--real-results", str(bad))
    assert code == 1 and f"{bad}:2: column 'success'" in err
    # One run only: every group is skipped, exit code 2.
    code, err = run("--runs", str(simpler_runs / "rt1x"))
    assert code == 2 and "no task group has 2 or more matched policies" in err


def test_python_m_bench_simreal(simpler_runs: Path) -> None:
    argv = ["--runs", *(str(simpler_runs / name) for name in ("rt1_converged", "rt1x", "run_d"))]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.simreal", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "sim-vs-real agreement, mode visual_matching" in proc.stdout and "pick_coke_can" in proc.stdout
    assert "RuntimeWarning" not in proc.stderr
