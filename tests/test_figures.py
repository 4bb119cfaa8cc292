"""Paper figures (bench.figures), training-log loading and the sim-vs-real metrics (bench.simreal)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench import figures
from bench.figures import calvin as fig_calvin
from bench.figures import common as fig_common
from bench.figures import simpler as fig_simpler
from bench.figures import training as fig_training
from bench.leaderboard import calvin_published_rows
from bench.results import RunFormatError, find_runs, find_train_logs, load_run, load_train_log, runs_table
from bench.simreal import mmrv, pearson_r
from bench.stats import summarize_chains

matplotlib.use("Agg")  # bench.figures never uses pyplot; this only keeps any other import headless

TASKS = ("open_drawer", "move_slider_left", "turn_on_led", "lift_red_block_table", "place_in_slider")
MAX_WIDTH_PX = 3.45 * 300  # one column (3.3 in) at 300 dpi, with the tight-bbox padding


def write_run(folder: Path, policy: str, completed: list[int], summary_extra=None, config_extra=None) -> Path:
    """A run folder in bench.run's format (config.json, episodes.jsonl, summary.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for chain, done in enumerate(completed):
        tasks = TASKS[chain % 5 :] + TASKS[: chain % 5]
        steps = [40] * done + ([360] if done < 5 else [])
        records.append(
            {"chain": chain, "tasks": list(tasks), "completed": done, "steps": steps, "stop_reason": "x"}
        )
    summary = {
        "suite": "calvin",
        "policy": policy,
        "scene": "D",
        **summarize_chains(records),
        **(summary_extra or {}),
    }
    (folder / "config.json").write_text(json.dumps({"policy": policy, "scene": "D", **(config_extra or {})}))
    (folder / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def write_train_log(path: Path, n: int = 60, lr: float = 1e-4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        for step in range(0, n * 10, 10):
            record = {
                "step": step,
                "loss": 2.0 * np.exp(-step / 150) + 0.05,
                "lr": lr,
                "note": "text is ignored",
            }
            if step % 100 == 0:
                record["val_loss"] = 2.2 * np.exp(-step / 170) + 0.1
            handle.write(json.dumps(record) + "\n")
        handle.write("\n")
    return path


def assert_figure(paths: list[Path], formats=("png",)) -> None:
    assert sorted(p.suffix for p in paths) == sorted(f".{f}" for f in formats)
    for path in paths:
        data = path.read_bytes()
        assert len(data) > 1000
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG")
            with Image.open(path) as image:
                assert image.width <= MAX_WIDTH_PX, f"{path.name} is {image.width / 300:.2f} in wide"
        if path.suffix == ".pdf":
            assert data.startswith(b"%PDF")


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run(
        root / "a",
        "alpha",
        [5, 5, 4, 3, 5, 2, 5, 5],
        config_extra={"backbone": "kosmos", "structure": "policy_head"},
    )
    write_run(
        root / "b",
        "beta",
        [1, 0, 2, 0, 1, 0],
        summary_extra={"backbone": "llava", "structure": "policy_head"},
    )
    write_run(
        root / "c", "gamma", [3, 2, 3, 1], summary_extra={"backbone": "kosmos", "structure": "one_step"}
    )
    write_train_log(root / "train" / "ph" / "train_log.jsonl")
    return root


# --- sim vs real metrics ---------------------------------------------------------------------------


def test_mmrv_zero_when_the_ranking_is_preserved() -> None:
    assert mmrv([0.1, 0.5, 0.9], [0.2, 0.6, 0.8]) == 0.0
    assert mmrv([0.1, 0.5, 0.9], [0.0, 0.01, 1.0]) == 0.0  # only the order matters
    assert mmrv([0.3], [0.7]) == 0.0


def test_mmrv_hand_computed() -> None:
    # Fully reversed: per-policy max violations 0.6, 0.4, 0.6 -> mean 1.6 / 3.
    assert mmrv([0.1, 0.5, 0.9], [0.8, 0.6, 0.2]) == pytest.approx(1.6 / 3)
    # One swapped pair (0, 1) with real gap 0.1: policies 0 and 1 get 0.1, policy 2 gets 0.
    assert mmrv([0.1, 0.2, 0.9], [0.5, 0.4, 0.6]) == pytest.approx(0.2 / 3)


def test_mmrv_argument_order_sim_then_real() -> None:
    # The violation is weighted by the gap in the second (real) argument: 0.1 here, 0.8 swapped.
    assert mmrv([0.1, 0.9], [0.6, 0.5]) == pytest.approx(0.1)
    assert mmrv([0.6, 0.5], [0.1, 0.9]) == pytest.approx(0.8)


def test_mmrv_ties_follow_the_strict_comparison() -> None:
    # (S_i > S_j) != (R_i > R_j): a sim tie is a violation only for the policy that is better in real.
    assert mmrv([0.5, 0.5], [0.3, 0.7]) == pytest.approx(0.2)
    assert mmrv([0.3, 0.7], [0.5, 0.5]) == 0.0


def test_pearson_r_hand_computed() -> None:
    assert pearson_r([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5, abs=1e-6)  # centred: 1 / (2 + 1e-8)
    assert pearson_r([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0, abs=1e-6)
    assert pearson_r([0.1, 0.2, 0.3], [0.1, 0.2, 0.3]) == 1.0
    assert pearson_r([1, 2, 3], [11, 12, 13]) == 1.0  # equal centred vectors: exactly 1
    assert pearson_r([0.4, 0.4], [0.1, 0.9]) == 0.0
    sim, real = np.array([0.86, 0.71, 0.57, 0.17]), np.array([0.853, 0.92, 0.76, 0.293])
    assert pearson_r(sim, real) == pytest.approx(np.corrcoef(sim, real)[0, 1], abs=1e-6)
    with pytest.raises(ValueError, match="same 1-D shape"):
        pearson_r([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="same 1-D shape"):
        mmrv([1, 2], [1])


# --- training logs ---------------------------------------------------------------------------------


def test_load_train_log_jsonl_and_csv(tmp_path: Path) -> None:
    log = load_train_log(write_train_log(tmp_path / "r" / "train_log.jsonl", n=30))
    assert list(log.columns) == ["step", "loss", "lr", "val_loss"] and len(log) == 30
    assert log["val_loss"].notna().sum() == 3 and log["step"].is_monotonic_increasing
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "train_log.csv").write_text("step,loss,lr\n20,0.5,1e-4\n10,0.9,1e-4\n")
    csv = load_train_log(tmp_path / "c" / "train_log.csv")
    assert list(csv["step"]) == [10, 20] and list(csv["loss"]) == [0.9, 0.5]
    assert [p.parent.name for p in find_train_logs(tmp_path)] == ["c", "r"]
    resumed = tmp_path / "resumed" / "train_log.jsonl"
    resumed.parent.mkdir()
    lines = [{"step": 0, "loss": 1.0}, {"step": 10, "loss": 0.8}, {"step": 10, "eval_avg_len": 1.5}]
    lines += [{"step": 10, "loss": 0.7}, {"step": 20, "loss": 0.5}]  # step 10 logged again after a resume
    resumed.write_text("".join(json.dumps(line) + "\n" for line in lines))
    merged = load_train_log(resumed)
    assert list(merged["step"]) == [0, 10, 20] and list(merged["loss"]) == [1.0, 0.7, 0.5]
    assert merged["eval_avg_len"].tolist()[1] == 1.5


def test_bad_train_log_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "train_log.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"loss": 0.5}\n')
    with pytest.raises(RunFormatError, match=r"train_log.jsonl: line 2: key 'step'"):
        load_train_log(path)
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo\n')
    with pytest.raises(RunFormatError, match=r"train_log.jsonl: line 2 is not valid JSON"):
        load_train_log(path)


# --- figures ---------------------------------------------------------------------------------------


def test_success_curve_and_heatmap(runs: Path, tmp_path: Path) -> None:
    loaded = [load_run(p) for p in find_runs(runs)]
    table = runs_table(loaded)
    paths = fig_calvin.plot_success_curve(
        table, tmp_path / "f" / "success", published=calvin_published_rows(), formats=("pdf", "png")
    )
    assert_figure(paths, ("pdf", "png"))
    per_task = fig_calvin.per_task_frame(loaded, fig_common.run_labels(table))
    assert set(per_task["label"]) == {"alpha", "beta", "gamma"}
    alpha_drawer = per_task[(per_task["label"] == "alpha") & (per_task["task"] == "open_drawer")].iloc[0]
    assert (alpha_drawer["successes"], alpha_drawer["trials"]) == (
        load_run(runs / "a")["summary"]["per_task"]["open_drawer"]["successes"],
        8,
    )
    assert_figure(fig_calvin.plot_task_heatmap(per_task, tmp_path / "f" / "heatmap", formats=("png",)))
    assert len(fig_calvin.calvin_task_order()) == 34


def test_training_curves(tmp_path: Path) -> None:
    logs = {
        "a": load_train_log(write_train_log(tmp_path / "a" / "train_log.jsonl")),
        "b": load_train_log(write_train_log(tmp_path / "b" / "train_log.jsonl", lr=2e-5)),
    }
    assert fig_training.training_keys(logs) == ["loss", "val_loss", "lr"]
    parts = {
        "x": pd.DataFrame(columns=["step", "grad_norm", "lr", "loss_arm", "eval_avg_len", "loss", "epoch"])
    }
    assert fig_training.training_keys(parts) == ["loss", "eval_avg_len", "lr", "loss_arm"]
    assert_figure(fig_training.plot_training_curves(logs, tmp_path / "curves", smooth=0.6, formats=("png",)))
    with pytest.raises(ValueError, match="no scalar key"):
        fig_training.plot_training_curves(logs, tmp_path / "none", keys=["missing"])


def test_design_grid_pools_cells_and_plots(runs: Path, tmp_path: Path) -> None:
    extra = write_run(
        tmp_path / "more", "alpha2", [5, 5], config_extra={"backbone": "kosmos", "structure": "policy_head"}
    )
    table = runs_table([*find_runs(runs), extra])
    grid = fig_calvin.design_grid(table)
    assert list(grid.index) == ["one_step", "policy_head"] and list(grid.columns) == ["kosmos", "llava"]
    # kosmos / policy_head pools run a (8 chains, avg 34/8) and the extra run (2 chains, avg 5): 44/10.
    assert grid.loc["policy_head", "kosmos"] == pytest.approx(4.4)
    assert grid.loc["one_step", "kosmos"] == pytest.approx(2.25) and np.isnan(grid.loc["one_step", "llava"])
    assert_figure(fig_calvin.plot_design_grid(table, tmp_path / "grid", formats=("png",)))
    ordered = pd.DataFrame(
        {
            "backbone": ["k"] * 3,
            "structure": ["Policy-Head Continuous", "one step discrete", "zzz"],
            "avg_len": [1.0, 2.0, 3.0],
            "n_chains": [1, 1, 1],
        }
    )
    assert list(fig_calvin.design_grid(ordered).index) == [
        "one step discrete",
        "Policy-Head Continuous",
        "zzz",
    ]


def test_design_grid_splits_a_structure_by_head_from_the_policy_provenance(tmp_path: Path) -> None:
    """A VLA run records its design in config.json's policy_provenance only; the grid reads it there,
    splits the policy-head row by head (the heads differ) but not one-step (one head), and draws one
    grid per comparable set-up (a fixed first task is another set-up than the official chains)."""

    def vla_run(name: str, structure: str, head: str | None, completed: list[int], **config) -> Path:
        design = {"backbone": "paligemma", "structure": structure, "head": head, "checkpoint": f"/ck/{name}"}
        return write_run(
            tmp_path / name, "vla:x", completed, config_extra={"policy_provenance": design, **config}
        )

    folders = [
        vla_run("lstm", "policy_head_continuous", "lstm", [1, 1, 0, 2]),
        vla_run("gpt", "policy_head_continuous", "gpt", [0, 0, 0, 0]),
        vla_run("os", "one_step_continuous", "fc", [1, 0, 0, 0]),
        vla_run("disc", "one_step_discrete", None, [0, 0]),
        vla_run("first", "one_step_continuous", "fc", [1, 1], first_task="open_drawer"),
    ]
    table = runs_table(folders)
    assert list(table["head"].fillna("-")) == ["lstm", "gpt", "fc", "-", "fc"]
    assert table["checkpoint"][0] == "/ck/lstm"
    grid = fig_calvin.design_grid(table.iloc[:4])
    assert list(grid.index) == [
        "one_step_continuous",
        "one_step_discrete",
        "policy_head_continuous / gpt",
        "policy_head_continuous / lstm",
    ]
    assert grid.loc["policy_head_continuous / lstm", "paligemma"] == pytest.approx(1.0)
    assert grid.loc["one_step_continuous", "paligemma"] == pytest.approx(0.25)  # not pooled with 'first'
    messages: list[str] = []
    written = figures.make_figures(folders, tmp_path / "out", formats=("png",), log=messages.append)
    assert sorted(p.stem for p in written if p.stem.startswith("design")) == [
        "design_grid_avg_len_D",
        "design_grid_avg_len_D-open-drawer",
    ]
    assert not [m for m in messages if m.startswith("design")]
    folders.append(vla_run("lstm2", "policy_head_continuous", "lstm", [0, 0]))  # another model, one cell
    figures.make_figures(folders, tmp_path / "out2", formats=("png",), log=messages.append)
    pooled = [m for m in messages if m.startswith("design")]
    assert len(pooled) == 1 and "policy_head_continuous / lstm x paligemma pools 2 runs of 2" in pooled[0]


def test_sim_vs_real_scatter(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "policy": ["RT-1 (conv.)", "RT-1 (15%)", "RT-1-X", "Octo-base", "RT-2-X"],
            "sim_rate": [0.86, 0.71, 0.57, 0.17, 0.79],
            "real_rate": [0.853, 0.920, 0.760, 0.293, 0.907],
        }
    )
    assert_figure(fig_simpler.plot_sim_vs_real(frame, tmp_path / "simreal", formats=("png",)))
    by_task = pd.concat(
        [frame.assign(task="coke can"), frame.assign(task="drawer", sim_rate=frame["sim_rate"][::-1].values)]
    )
    assert_figure(fig_simpler.plot_sim_vs_real(by_task, tmp_path / "simreal_tasks", formats=("png",)))
    with pytest.raises(ValueError, match="real_rate"):
        fig_simpler.plot_sim_vs_real(frame.drop(columns="real_rate"), tmp_path / "bad")


def test_make_figures_end_to_end_and_skips(runs: Path, tmp_path: Path) -> None:
    csv = tmp_path / "simreal.csv"
    pd.DataFrame(
        {"policy": ["a", "b", "c"], "sim_rate": [0.1, 0.5, 0.4], "real_rate": [0.2, 0.6, 0.7]}
    ).to_csv(csv, index=False)
    messages: list[str] = []
    written = figures.make_figures(
        [runs], tmp_path / "out", formats=("png",), simreal=csv, log=messages.append
    )
    names = sorted(p.stem for p in written)
    assert names == [
        "design_grid_avg_len",
        "sim_vs_real",
        "success_in_a_row",
        "task_success_heatmap",
        "training_curves",
    ]
    assert all(p.stat().st_size > 0 for p in written) and messages == []

    messages.clear()
    assert figures.make_figures([tmp_path / "nothing"], tmp_path / "o2", log=messages.append) == []
    assert len(messages) == 3 and all("\n" not in m and "skipped" in m for m in messages)
    assert figures.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "o3")]) == 2


def test_short_names_and_labels() -> None:
    assert fig_common.short_names([Path("/x/a/run"), Path("/x/b/run"), Path("/x/c")]) == [
        "a/run",
        "b/run",
        "x/c",
    ]
    table = pd.DataFrame(
        {"policy": ["p", "p", "q"], "scene": ["D", "D", "A"], "run": ["/r/one", "/r/two", "/r/q"]}
    )
    assert fig_common.run_labels(table) == ["p (D) [one]", "p (D) [two]", "q (A) [q]"]


# --- SimplerEnv-style figures ----------------------------------------------------------------------


@pytest.fixture
def simpler_runs(tmp_path: Path) -> Path:
    """Simpler runs whose folders name reference policies (10 trials per task and variant)."""
    from tests.test_simreal import write_simpler_run

    root = tmp_path / "simpler"
    pick = ("pick_can_horizontal", "pick_can_vertical", "pick_can_standing")
    bridge = ("put_spoon_on_towel", "put_carrot_on_plate", "stack_green_on_yellow", "put_eggplant_in_basket")
    google = {
        "rt1_converged": (9, 9, 8, 6, 8, 9, 2),
        "rt1x": (8, 6, 8, 5, 5, 7, 4),
        "octo_base": (3, 2, 3, 3, 2, 5, 0),
    }
    for name, (h, v, s, near, drawer, close, apple) in google.items():
        counts = {
            **dict(zip(pick, (h, v, s), strict=True)),
            "move_near": near,
            "open_drawer_top": drawer,
            "close_drawer_middle": close,
            "place_apple_in_top_drawer": apple,
        }
        write_simpler_run(root / "vm" / name, name, counts)
        va = {task: [k] * 9 + [max(k - 2, 0)] * 2 for task, k in counts.items()}
        write_simpler_run(root / "va" / name, name, va, mode="variant_aggregation")
    for name, success, grasp in (
        ("octo_small", (4, 1, 1, 4), (5, 2, 6, 6)),
        ("octo-base", (3, 3, 0, 2), (5, 5, 3, 4)),
    ):
        write_simpler_run(
            root / "bridge" / name,
            name,
            dict(zip(bridge, success, strict=True)),
            grasps=dict(zip(bridge, grasp, strict=True)),
        )
    return root


def test_simpler_task_frame_and_bars(simpler_runs: Path, tmp_path: Path) -> None:
    from bench.simreal import load_simpler_run

    runs = [load_simpler_run(p) for p in find_runs(simpler_runs)]
    frame = fig_simpler.simpler_task_frame(runs)
    assert set(frame["mode"]) == {"visual_matching", "variant_aggregation"}
    row = frame[(frame["label"] == "rt1x") & (frame["task"] == "pick_can_vertical")]
    vm = row[row["mode"] == "visual_matching"].iloc[0]
    assert vm["rate"] == pytest.approx(0.6) and vm["group"] == "pick_coke_can" and vm["trials"] == 10
    va = row[row["mode"] == "variant_aggregation"].iloc[0]
    assert va["rate"] == pytest.approx(0.6) and va["trials"] == 90  # camera variants (0.4) left out
    spoon = frame[(frame["label"] == "octo_small") & (frame["task"] == "put_spoon_on_towel")].iloc[0]
    assert (spoon["rate"], spoon["partial"]) == pytest.approx((0.4, 0.5))
    google = fig_simpler.plot_simpler_tasks(
        frame, tmp_path / "google", family="google_robot", formats=("png", "pdf")
    )
    assert_figure(google, ("png", "pdf"))
    assert_figure(
        fig_simpler.plot_simpler_tasks(frame, tmp_path / "bridge", family="bridge", formats=("png",))
    )
    one_mode = frame[frame["mode"] == "visual_matching"]
    assert_figure(fig_simpler.plot_simpler_tasks(one_mode, tmp_path / "all", formats=("png",)))
    with pytest.raises(ValueError, match="no SimplerEnv-style task rows for widowx"):
        fig_simpler.plot_simpler_tasks(frame, tmp_path / "none", family="widowx")


def test_simpler_sim_vs_real_frame_and_scatter(simpler_runs: Path, tmp_path: Path) -> None:
    from bench.simreal import REFERENCE_CSV, load_real_results, load_simpler_run

    real = load_real_results(REFERENCE_CSV)
    vm = [load_simpler_run(p) for p in find_runs(simpler_runs / "vm")]
    frame = fig_simpler.simpler_sim_real_frame(vm, real)
    assert list(frame.columns) == ["policy", "task", "sim_rate", "real_rate"]
    coke = frame[frame["task"] == "pick coke can"].set_index("policy")
    assert sorted(coke.index) == ["Octo-base", "RT-1 (converged)", "RT-1-X"]
    assert (
        coke.loc["RT-1-X", "sim_rate"] == pytest.approx(22 / 30) and coke.loc["RT-1-X", "real_rate"] == 0.76
    )
    assert list(dict.fromkeys(frame["task"])) == [
        "pick coke can",
        "move near",
        "open drawer",
        "close drawer",
        "place apple in top drawer",
    ]
    assert_figure(fig_simpler.plot_simpler_sim_vs_real(frame, tmp_path / "scatter", formats=("png",)))
    notes: list[str] = []
    bridge = [load_simpler_run(p) for p in find_runs(simpler_runs / "bridge")]
    pairs = fig_simpler.simpler_sim_real_frame(bridge, real, log=notes.append)
    assert set(pairs["policy"]) == {"Octo-small", "Octo-base"} and len(pairs) == 8 and notes == []
    renamed = fig_simpler.simpler_sim_real_frame(bridge, real, {"octo-base": "RT-1-X"}, log=notes.append)
    assert set(renamed["policy"]) == {"Octo-small", "RT-1-X"}
    single = frame[frame["task"] == "move near"]
    assert_figure(fig_simpler.plot_simpler_sim_vs_real(single, tmp_path / "single", formats=("png",)))


def test_make_figures_with_simpler_runs(simpler_runs: Path, runs: Path, tmp_path: Path) -> None:
    from tests.test_simreal import write_simpler_run

    write_simpler_run(simpler_runs / "vm" / "mystery", "expert", {"move_near": 4})
    messages: list[str] = []
    written = figures.make_figures(
        [simpler_runs, runs], tmp_path / "out", formats=("png",), log=messages.append
    )
    names = sorted(p.stem for p in written)
    assert names == [
        "design_grid_avg_len",
        "sim_vs_real_simpler_variant_aggregation",
        "sim_vs_real_simpler_visual_matching",
        "simpler_tasks_bridge",
        "simpler_tasks_google_robot",
        "success_in_a_row",
        "task_success_heatmap",
        "training_curves",
    ]
    for path in written:
        assert_figure([path])
    assert any(
        "sim_vs_real_simpler_visual_matching: left out run(s)" in m and "mystery" in m for m in messages
    )
    assert not any("no figures for suite" in m for m in messages)
    # A real-world CSV naming none of the runs: the scatter is skipped with the reason; a bad one is an error.
    other = tmp_path / "other.csv"
    other.write_text("policy,task,success,partial\nX,move_near,0.5,\nY,move_near,0.6,\n")
    messages.clear()
    written = figures.make_figures(
        [simpler_runs], tmp_path / "o2", formats=("png",), real_results=other, log=messages.append
    )
    assert not any(p.stem.startswith("sim_vs_real") for p in written)
    assert any(m.startswith("sim_vs_real_simpler_visual_matching: skipped (no task group") for m in messages)
    bad = tmp_path / "bad.csv"
    bad.write_text("policy,task,success,partial\nX,move_near,50,\n")
    assert figures.main([str(simpler_runs), "--out", str(tmp_path / "o3"), "--real-results", str(bad)]) == 1
    assert figures.main([str(simpler_runs), "--out", str(tmp_path / "o3"), "--name", "oops"]) == 1


def test_python_m_bench_figures(simpler_runs: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "figs"
    argv = [
        str(simpler_runs / "bridge"),
        "--out",
        str(out),
        "--formats",
        "png",
        "--name",
        "octo-base=Octo-base",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.figures", *argv],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "sim_vs_real_simpler_visual_matching.png",
        "simpler_tasks_bridge.png",
    ]
