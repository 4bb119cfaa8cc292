"""Stored-run discovery and loading (bench.results) and the leaderboards (bench.leaderboard)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pandas as pd
import pytest

from bench import leaderboard
from bench import tables as builtin_tables
from bench.results import RunFormatError, find_runs, load_run, runs_table
from bench.stats import completed_from_rates, mean_interval, summarize_chains

TASKS = ("open_drawer", "move_slider_left", "turn_on_led", "lift_red_block_table", "place_in_slider")


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval written out by hand (independent of scipy)."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def write_run(
    folder: Path,
    policy: str,
    completed: list[int],
    scene: str = "D",
    suite: str = "calvin",
    summary_extra: dict | None = None,
    config_extra: dict | None = None,
    episodes: bool = True,
) -> Path:
    """A run folder in bench.run's format: config.json, episodes.jsonl, summary.json."""
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for chain, done in enumerate(completed):
        steps = [50] * done + ([360] if done < 5 else [])
        stop = "done" if done == 5 else f"timeout:{TASKS[done]}"
        records.append(
            {"chain": chain, "tasks": list(TASKS), "completed": done, "steps": steps, "stop_reason": stop}
        )
    summary = {"suite": suite, "policy": policy, "scene": scene, **summarize_chains(records), "seed": 0}
    summary.update(summary_extra or {})
    config = {"policy": policy, "suite": suite, "scene": scene, "version": "0.1.0", "git_commit": "abc123"}
    config.update(config_extra or {})
    (folder / "config.json").write_text(json.dumps(config))
    if episodes:
        (folder / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return folder


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    # strong: 10 chains, avg 4.7 (above every published row); at least 1..5 in a row: 10, 10, 10, 9, 8 of 10
    write_run(root / "strong_D", "strong", [5, 5, 5, 5, 5, 5, 5, 5, 4, 3])
    write_run(root / "nested" / "weak_D", "weak", [1, 0, 0, 2, 0], config_extra={"backbone": "kosmos"})
    write_run(root / "mid_A", "mid", [3, 3, 2, 2], scene="A")
    (root / "mid_A" / "videos").mkdir()
    (root / "mid_A" / "videos" / "summary.json").write_text("{}")  # never searched
    (root / "not_a_run").mkdir()
    return root


# --- bench.results ---------------------------------------------------------------------------------


def test_find_runs_is_recursive_sorted_and_skips_missing_roots(roots: Path, tmp_path: Path) -> None:
    found = find_runs([roots, tmp_path / "does_not_exist"])
    assert sorted(p.name for p in found) == ["mid_A", "strong_D", "weak_D"] and found == sorted(found)
    assert find_runs(roots / "strong_D") == [(roots / "strong_D").resolve()]
    assert find_runs(roots / "strong_D" / "summary.json") == [(roots / "strong_D").resolve()]
    assert find_runs([]) == []


def test_load_run_reads_summary_config_provenance_and_chains(roots: Path) -> None:
    run = load_run(roots / "nested" / "weak_D")
    assert run["summary"]["policy"] == "weak" and run["config"]["scene"] == "D"
    assert run["provenance"]["version"] == "0.1.0" and run["provenance"]["git_commit"] == "abc123"
    assert run["meta"]["backbone"] == "kosmos" and run["meta"]["structure"] is None
    assert run["completed"] == [1, 0, 0, 2, 0] and run["warnings"] == []
    assert load_run(roots / "strong_D" / "summary.json")["path"] == roots / "strong_D"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"policy": "p"}), "key 'suite' is missing"),
        (
            json.dumps({"suite": "calvin", "policy": "p", "n_chains": 3, "success_rates": [1, 1, 1, 1, 1]}),
            "'avg_len'",
        ),
        (
            json.dumps(
                {"suite": "calvin", "policy": "p", "n_chains": 3, "success_rates": [0.5] * 4, "avg_len": 2}
            ),
            "key 'success_rates' must be a list of 5 numbers",
        ),
        (
            json.dumps(
                {"suite": "calvin", "policy": "p", "n_chains": 0, "success_rates": [0] * 5, "avg_len": 0}
            ),
            "key 'n_chains' must be an integer >= 1",
        ),
    ],
)
def test_malformed_summary_names_the_file_and_key(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "summary.json").write_text(text)
    with pytest.raises(RunFormatError) as info:
        load_run(tmp_path)
    message = str(info.value)
    assert str(tmp_path / "summary.json") in message and fragment in message
    assert isinstance(info.value, ValueError)


def test_missing_summary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        load_run(tmp_path)


def test_completed_from_rates_round_trips() -> None:
    completed = [5, 5, 4, 3, 3, 0, 1, 2]
    records = [
        {"tasks": TASKS, "completed": c, "steps": [1] * min(c + 1, 5), "stop_reason": "x"} for c in completed
    ]
    summary = summarize_chains(records)
    assert completed_from_rates(summary["success_rates"], len(completed)) == sorted(completed)


def test_episodes_disagreeing_with_summary_warn_and_fall_back(tmp_path: Path) -> None:
    folder = write_run(tmp_path / "r", "p", [5, 0, 0, 0])
    with open(folder / "episodes.jsonl", "a") as handle:
        handle.write(json.dumps({"chain": 9, "completed": 5}) + "\n")
    run = load_run(folder)
    assert run["completed"] == [0, 0, 0, 5]
    assert "do not match" in run["warnings"][0]
    with pytest.warns(UserWarning, match="do not match"):
        runs_table([folder])
    no_episodes = write_run(tmp_path / "s", "p", [2, 3], episodes=False)
    assert sorted(load_run(no_episodes)["completed"]) == [2, 3]


def test_runs_table_numbers(roots: Path) -> None:
    table = runs_table(find_runs(roots)).set_index("policy")
    strong = table.loc["strong"]
    assert strong["n_chains"] == 10 and strong["avg_len"] == pytest.approx(4.7)
    assert [strong[f"sr{i}"] for i in range(1, 6)] == pytest.approx([1.0, 1.0, 1.0, 0.9, 0.8])
    for i, k in zip(range(1, 6), (10, 10, 10, 9, 8), strict=True):
        assert (strong[f"sr{i}_low"], strong[f"sr{i}_high"]) == pytest.approx(wilson(k, 10), abs=1e-9)
    assert strong["avg_len_low"] < 4.7 < strong["avg_len_high"] <= 5
    assert table.loc["mid", "scene"] == "A" and table.loc["weak", "backbone"] == "kosmos"
    assert table.loc["weak", "version"] == "0.1.0"


def test_mean_interval() -> None:
    values = [5, 5, 5, 5, 5, 5, 5, 4, 3, 0]  # mean 4.2
    low, high = mean_interval(values)
    assert low < 4.2 < high and mean_interval(values) == (low, high)  # seeded: reproducible
    assert mean_interval([3] * 8) == (3.0, 3.0)
    n_low, n_high = mean_interval(values, method="normal")
    sd = pd.Series(values).std()
    assert n_high == pytest.approx(min(4.2 + 1.959963984540054 * sd / math.sqrt(10), 5.0))
    assert n_low == pytest.approx(4.2 - 1.959963984540054 * sd / math.sqrt(10))
    wide, narrow = mean_interval([0, 5] * 5), mean_interval([0, 5] * 500)
    assert wide[1] - wide[0] > narrow[1] - narrow[0]
    assert all(math.isnan(v) for v in mean_interval([]))
    with pytest.raises(ValueError, match="unknown interval method"):
        mean_interval(values, method="magic")


# --- bench.leaderboard -----------------------------------------------------------------------------


def test_calvin_table_sorting_and_published_rows(roots: Path) -> None:
    tables = leaderboard.build_leaderboards(runs_table(find_runs(roots)))
    table = tables["calvin"]
    assert list(table["avg_len"]) == sorted(table["avg_len"], reverse=True)
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    published = table[table["source"] == builtin_tables.PUBLISHED]
    assert len(published) == len(builtin_tables.CALVIN_PUBLISHED) == 6
    gr1 = published[published["policy"] == "GR-1"].iloc[0]
    assert gr1["split"] == "ABC->D" and gr1["avg_len"] == 3.06 and gr1["sr5"] == 0.401
    assert published[["sr1_low", "sr5_high", "avg_len_low", "avg_len_high", "n_chains"]].isna().all().all()
    kosmos = published[published["split"] == "ABCD->D"].iloc[0]
    assert (kosmos["sr1"], kosmos["avg_len"]) == (0.967, 4.49)
    ours = table[table["source"] == "run"]
    assert list(ours["policy"]) == ["strong", "mid", "weak"]  # 4.7, 2.5, 0.6
    assert list(table["policy"][:4]) == ["strong", "RoboVLMs KosMos P.H.", "RoboVLMs KosMos P.H.", "GR-1"]
    assert list(table["policy"][-2:]) == ["weak", "MCIL"]  # 0.6 > 0.31
    alone = leaderboard.build_leaderboards(runs_table(find_runs(roots)), include_published=False)["calvin"]
    assert (alone["source"] == "run").all() and len(alone) == 3


def test_a_run_of_another_set_up_says_so_in_its_chains_cell(roots: Path) -> None:
    """A fixed first task or a step budget other than CALVIN's 360 is named in the chains cell, so
    the row is not read as comparable with the official-chain rows."""
    write_run(
        roots / "rung1", "rung1", [1, 1, 0], config_extra={"first_task": "open_drawer", "max_steps": 150}
    )
    write_run(roots / "budget", "budget", [0, 1], config_extra={"max_steps": 360})
    markdown = leaderboard.build_leaderboards(runs_table(find_runs(roots)))["calvin"]
    text = builtin_tables.calvin_markdown(markdown)
    rows = {line.split(" | ")[1]: line.split(" | ")[5] for line in text.splitlines() if line.startswith("| ")}
    assert rows["rung1"] == "3 (first task open_drawer, 150 steps)"
    assert rows["budget"] == "2" and rows["strong"] == "10"


def test_cli_writes_markdown_and_csv(roots: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "results"
    assert leaderboard.main([str(roots), "--out", str(out), "--quiet"]) == 0
    markdown = (out / "leaderboard.md").read_text()
    assert markdown.startswith("# Leaderboard") and "## CALVIN-style long-horizon evaluation" in markdown
    header = "| # | policy | split | scene | env | chains | 1 | 2 | 3 | 4 | 5 | avg len | source |"
    assert header in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and line[2] not in "#-"]
    assert rows[0].startswith("| 1 | strong | - | D | ours | 10 | 1.000 [")
    lo, hi = wilson(9, 10)
    assert f"| 0.900 [{lo:.2f}, {hi:.2f}] |" in rows[0] and "| 4.70 [" in rows[0]
    assert "| RoboVLMs KosMos P.H. *(published)* | ABC->D | D | calvin_env | - | 0.980 | 0.936 |" in markdown
    assert sum("published" in row for row in rows) == 6
    csv = pd.read_csv(out / "leaderboard_calvin.csv")
    assert list(csv["avg_len"]) == sorted(csv["avg_len"], reverse=True)
    assert csv.loc[csv["policy"] == "strong", "sr4_low"].item() == pytest.approx(lo, abs=1e-5)
    assert set(csv["source"]) == {"run", "published"}
    assert "3 run(s)" in capsys.readouterr().out


def test_unknown_suite_is_a_warning_not_a_crash(roots: Path, tmp_path: Path, capsys) -> None:
    write_run(roots / "simpler_run", "octo", [1], suite="simpler_env")
    table = runs_table(find_runs(roots))
    with pytest.warns(UserWarning, match="no leaderboard table for suite 'simpler_env'"):
        tables = leaderboard.build_leaderboards(table)
    assert set(tables) == {"calvin"} and "octo" not in set(tables["calvin"]["policy"])
    assert leaderboard.main([str(roots), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "warning: no leaderboard table for suite 'simpler_env' (1 run(s))" in capsys.readouterr().err


def test_a_registered_suite_brings_its_own_table(roots: Path) -> None:
    """The table comes from the suite's module (tests/toy_suite.py), not from a list in bench.leaderboard."""
    from bench.suites import SUITES, register_suite

    toy = roots / "toy"
    toy.mkdir()
    summary = {"suite": "toy", "policy": "octo", "n_games": 4, "wins": 1, "win_rate": 0.25}
    (toy / "summary.json").write_text(json.dumps(summary))
    register_suite("toy", "tests.toy_suite:ToySuite")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            built = leaderboard.build_leaderboards(runs_table(find_runs(roots)))
        assert list(built["toy"]["policy"]) == ["octo"] and list(built["toy"]["win_rate"]) == [0.25]
        assert "## Toy counting games\n\nCounting games won." in leaderboard.leaderboard_markdown(
            built, ["runs"]
        )
        (toy / "summary.json").write_text(json.dumps({**summary, "wins": 5}))
        with pytest.raises(RunFormatError, match="key 'wins' must be an integer in 0..4, got 5"):
            load_run(toy)
    finally:
        SUITES.pop("toy")


def test_shards_are_left_out_and_notes_shown(roots: Path, tmp_path: Path, capsys) -> None:
    write_run(roots / "p" / "shard0", "sharded", [5, 5], summary_extra={"shard": "0/2"})
    write_run(roots / "p" / "all", "merged", [5, 5, 4], summary_extra={"missing_chains": [7], "n_errors": 1})
    out = tmp_path / "o"
    assert leaderboard.main([str(roots), "--out", str(out), "--quiet"]) == 0
    markdown = (out / "leaderboard.md").read_text()
    assert "sharded" not in markdown and "(1 chain errors; partial: 1 chains missing)" in markdown
    assert "left out 1 shard run(s)" in capsys.readouterr().err
    assert leaderboard.main([str(roots), "--out", str(out), "--quiet", "--include-shards"]) == 0
    assert "(shard 0/2)" in (out / "leaderboard.md").read_text()


def test_cli_malformed_runs_and_no_runs(roots: Path, tmp_path: Path, capsys) -> None:
    bad = roots / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text(json.dumps({"suite": "calvin", "policy": "x"}))
    out = tmp_path / "o"
    assert leaderboard.main([str(roots), "--out", str(out), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped run" in err and str(bad / "summary.json") in err and "'n_chains'" in err
    assert leaderboard.main([str(roots), "--out", str(out), "--quiet", "--strict"]) == 1
    assert "'n_chains' is missing" in capsys.readouterr().err
    assert leaderboard.main([str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no runs" in capsys.readouterr().err


def test_real_tiny_run(tmp_path: Path) -> None:
    from bench.run import main as run_main

    folder = tmp_path / "runs" / "random_D"
    assert (
        run_main(
            ["--policy", "random", "--chains", "2", "--max-steps", "20", "--quiet", "--out", str(folder)]
        )
        == 0
    )
    run = load_run(folder)
    assert run["provenance"]["python"] and len(run["completed"]) == 2 and run["warnings"] == []
    table = leaderboard.build_leaderboards(runs_table([folder]))["calvin"]
    row = table[table["source"] == "run"].iloc[0]
    assert row["policy"] == "random" and row["n_chains"] == 2 and row["scene"] == "D"
    assert row["sr1_high"] == pytest.approx(wilson(int(round(row["sr1"] * 2)), 2)[1])


# --- SimplerEnv-style table ------------------------------------------------------------------------


@pytest.fixture
def simpler_roots(roots: Path) -> Path:
    """Simpler runs (10 trials per task and variant) next to the CALVIN runs.

    alpha (VM): coke can 8, 6, 4 -> 0.6 (18/30); move_near 5 -> 0.5; carrot 3 (grasped 6) -> 0.3 (0.6)
    alpha (VA): move_near 4 in each of the 9 counting variants -> 0.4 (36/90), cameras 2 and 0 -> 0.1
    beta  (VM): coke can 10, 9, 8 -> 0.9 (27/30); move_near 2 -> 0.2; carrot 5 (grasped 9) -> 0.5 (0.9)
    gamma (VM): spoon 2, carrot 4, stack 6, eggplant 8 (grasped 5, 5, 7, 9): every Bridge group,
                so a Bridge average of 0.5 (partial 0.65)
    """
    from tests.test_simreal import write_simpler_run

    pick = ("pick_can_horizontal", "pick_can_vertical", "pick_can_standing")
    sim = roots / "simpler"
    write_simpler_run(
        sim / "alpha_vm",
        "alpha",
        {**dict(zip(pick, (8, 6, 4), strict=True)), "move_near": 5, "put_carrot_on_plate": 3},
        grasps={"put_carrot_on_plate": 6},
    )
    write_simpler_run(sim / "alpha_va", "alpha", {"move_near": [4] * 9 + [2, 0]}, mode="variant_aggregation")
    write_simpler_run(
        sim / "beta_vm",
        "beta",
        {**dict(zip(pick, (10, 9, 8), strict=True)), "move_near": 2, "put_carrot_on_plate": 5},
        grasps={"put_carrot_on_plate": 9},
    )
    bridge = ("put_spoon_on_towel", "put_carrot_on_plate", "stack_green_on_yellow", "put_eggplant_in_basket")
    write_simpler_run(
        sim / "gamma_vm",
        "gamma",
        dict(zip(bridge, (2, 4, 6, 8), strict=True)),
        grasps=dict(zip(bridge, (5, 5, 7, 9), strict=True)),
    )
    return roots


def test_simpler_table_numbers_and_order(simpler_roots: Path) -> None:
    tables = leaderboard.build_leaderboards(runs_table(find_runs(simpler_roots)))
    assert set(tables) == {"calvin", "simpler"}
    table = tables["simpler"]
    assert list(table.columns) == builtin_tables.SIMPLER_COLUMNS
    keys = list(zip(table["group"], table["rank"], table["policy"], strict=True))
    assert keys == [
        ("pick_coke_can", 1, "beta (panda)"),
        ("pick_coke_can", 2, "alpha (panda)"),
        ("move_near", 1, "alpha (panda)"),
        ("move_near", 2, "beta (panda)"),
        ("put_spoon_on_towel", 1, "gamma (panda)"),
        ("put_carrot_on_plate", 1, "beta (panda)"),
        ("put_carrot_on_plate", 2, "gamma (panda)"),
        ("put_carrot_on_plate", 3, "alpha (panda)"),
        ("stack_green_on_yellow", 1, "gamma (panda)"),
        ("put_eggplant_in_basket", 1, "gamma (panda)"),
        ("average", 1, "gamma (panda)"),
    ]
    assert list(table["family"]) == ["google_robot"] * 4 + ["bridge"] * 7
    row = table.set_index(["group", "policy"])
    coke = row.loc[("pick_coke_can", "alpha (panda)")]
    assert coke["vm_rate"] == pytest.approx(0.6) and coke["vm_trials"] == 30
    assert (coke["vm_low"], coke["vm_high"]) == pytest.approx(wilson(18, 30), abs=1e-9)
    assert row.loc[("pick_coke_can", "beta (panda)"), "vm_high"] == pytest.approx(wilson(27, 30)[1], abs=1e-9)
    assert pd.isna(coke["va_rate"]) and pd.isna(coke["vm_partial"])
    near = row.loc[("move_near", "alpha (panda)")]
    assert (near["vm_rate"], near["va_rate"], near["va_trials"]) == pytest.approx((0.5, 0.4, 90))
    assert (near["va_low"], near["va_high"]) == pytest.approx(wilson(36, 90), abs=1e-9)
    assert near["va_camera"] == pytest.approx(0.1)
    assert near["vm_run"].endswith("alpha_vm") and near["va_run"].endswith("alpha_va")
    carrot = row.loc["put_carrot_on_plate"]
    assert carrot["vm_rate"].tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert carrot["vm_partial"].tolist() == pytest.approx([0.9, 0.5, 0.6])
    average = row.loc[("average", "gamma (panda)")]
    assert (average["vm_rate"], average["vm_partial"]) == pytest.approx((0.5, 0.65))
    assert pd.isna(average["vm_low"]) and average["vm_trials"] == 40


def test_simpler_cli_markdown_and_csv(simpler_roots: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    assert leaderboard.main([str(simpler_roots), "--out", str(out), "--quiet"]) == 0
    markdown = (out / "leaderboard.md").read_text()
    assert "## CALVIN-style long-horizon evaluation" in markdown
    assert "## SimplerEnv-style evaluation" in markdown
    assert "### Google robot" in markdown and "### WidowX (Bridge)" in markdown
    google, bridge = markdown.split("### Google robot")[1].split("### WidowX (Bridge)")
    assert "| group | # | policy | visual matching | variant aggregation | VA camera | source |" in google
    assert "partial VM | partial VA" in bridge and "partial" not in google.split("\n\n")[1]
    lo, hi = wilson(36, 90)
    assert "| move_near | 1 | alpha (panda) | 0.500 [" in google
    assert f"| 0.400 [{lo:.2f}, {hi:.2f}] | 0.100 |" in google
    assert "|  | 2 | beta (panda) | 0.200 [" in google and "| - | - |" in google  # beta: no VA run
    assert "| put_carrot_on_plate | 1 | beta (panda) | 0.500 [" in bridge and "| 0.900 | - |" in bridge
    assert "| average | 1 | gamma (panda) | 0.500 | - | - | 0.650 | - |" in bridge
    csv = pd.read_csv(out / "leaderboard_simpler.csv")
    assert (
        len(csv) == 11
        and csv.loc[0, "policy"] == "beta (panda)"
        and csv.loc[0, "vm_rate"] == pytest.approx(0.9)
    )
    assert (out / "leaderboard_calvin.csv").is_file()


def test_simpler_section_absent_without_simpler_runs(roots: Path, tmp_path: Path) -> None:
    assert leaderboard.main([str(roots), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    assert "SimplerEnv" not in (tmp_path / "o" / "leaderboard.md").read_text()
    assert not (tmp_path / "o" / "leaderboard_simpler.csv").exists()
    assert list(builtin_tables.build_simpler(pd.DataFrame()).columns) == builtin_tables.SIMPLER_COLUMNS


def test_simpler_duplicates_and_malformed_runs(simpler_roots: Path, tmp_path: Path) -> None:
    from tests.test_simreal import write_simpler_run

    write_simpler_run(simpler_roots / "simpler" / "beta_again", "beta", {"move_near": 7})
    bad = simpler_roots / "simpler" / "bad"
    bad.mkdir()
    (bad / "summary.json").write_text(json.dumps({"suite": "simpler", "policy": "delta", "mode": "vm"}))
    with pytest.warns(UserWarning, match="skipped run: .*bad/summary.json: key 'mode'"):
        rows = runs_table(find_runs(simpler_roots), on_error="warn")
    table = leaderboard.build_leaderboards(rows)["simpler"]
    near = table[table["group"] == "move_near"]
    assert list(near["policy"]) == ["beta (panda) [beta_again]", "alpha (panda)", "beta (panda) [beta_vm]"]
    assert "delta" not in set(table["policy"])


def test_simpler_rows_name_their_scene_set(tmp_path: Path) -> None:
    """Runs on SimplerEnv's own embodiments and on our Panda scenes never share a name (or a row)."""
    from tests.test_simreal import write_simpler_run

    root = tmp_path / "runs"
    for name, embodiment in (("octo_real", "simpler"), ("octo_panda", None)):
        folder = write_simpler_run(root / name, "octo", {"put_carrot_on_plate": 5})
        if embodiment is not None:
            summary = json.loads((folder / "summary.json").read_text())
            summary["embodiment"] = embodiment
            (folder / "summary.json").write_text(json.dumps(summary))
    table = leaderboard.build_leaderboards(runs_table(find_runs([root])), include_published=False)["simpler"]
    carrot = table[table["group"] == "put_carrot_on_plate"]
    assert sorted(carrot["policy"]) == ["octo (panda)", "octo (simpler)"]
