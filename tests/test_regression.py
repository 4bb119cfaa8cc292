"""Regression checks (bench.regression): the project's own expert baseline, a broken policy that must
fail, the statistics of ``compare`` on hand-made counts, baseline files and the command line.

The simulated runs (expert and broken policy on scene D) take ~20 s together; everything else is
instant. The committed baseline is results/baselines/expert_calvin_D.json, written by
``python -m bench.regression refresh --policy expert --scene D --chains 30 --out <it>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom, hypergeom

from bench import regression
from bench.regression import (
    Baseline,
    BaselineError,
    Counts,
    SettingMismatch,
    assert_no_regression,
    compare,
    evaluate_for_regression,
)
from bench.regression.compare import drop_pvalue, holm_adjust
from policies.expert import ExpertPolicy

ROOT = Path(__file__).resolve().parents[1]
EXPERT_BASELINE = ROOT / "results" / "baselines" / "expert_calvin_D.json"
CHAIN_METRICS = [f"in_a_row_{i}" for i in range(1, 6)]


def counts(n: int, in_a_row: tuple[int, ...], **per_task: tuple[int, int]) -> Counts:
    return Counts(n_chains=n, in_a_row=in_a_row, per_task=per_task)


def flat(k: int, n: int) -> Counts:
    """``k`` of ``n`` chains completed all 5 subtasks, the others none."""
    return counts(n, (k,) * 5)


# ----------------------------------------------------------------------------- (a) the expert's baseline


@pytest.fixture(scope="module")
def expert_baseline() -> Baseline:
    return Baseline.load(EXPERT_BASELINE)


def test_committed_baseline_describes_the_expert_run(expert_baseline):
    s = expert_baseline.setting
    assert (s["suite"], s["scene"], s["policy"], s["seed"], s["max_steps"]) == (
        "calvin",
        "D",
        "expert",
        0,
        360,
    )
    assert s["chains"] == {"source": "official", "first": 30}
    assert expert_baseline.counts.n_chains == 30
    assert expert_baseline.counts.in_a_row[0] >= 27, "the expert baseline itself should be near 100 %"
    assert expert_baseline.version and expert_baseline.created


def test_expert_with_the_baseline_settings_passes(expert_baseline):
    s = expert_baseline.setting
    current = evaluate_for_regression(
        "expert",
        s["suite"],
        scene=s["scene"],
        chains=s["chains"]["first"],
        seed=s["seed"],
        max_steps=s["max_steps"],
    )
    report = assert_no_regression(current, EXPERT_BASELINE)
    assert report.passed and report.notes == ()  # same recorded settings: nothing to note
    assert [r.metric for r in report.tested][:5] == CHAIN_METRICS


def test_expert_with_another_seed_and_fewer_chains_passes():
    current = evaluate_for_regression("expert", scene="D", chains=15, seed=1)
    report = assert_no_regression(current, EXPERT_BASELINE)
    assert any(note.startswith("seed differs") for note in report.notes)


# ----------------------------------------------------------------------------- (b) a real drop fails


class IdleOnRotateAndPush(ExpertPolicy):
    """The expert, broken: for rotate_* and push_* tasks it holds the arm still (absolute action =
    the current pose, gripper open) instead of following its script."""

    def reset(self, instruction, *, slot=0, seed=None, info=None):
        super().reset(instruction, slot=slot, seed=seed, info=info)
        self._idle = getattr(self, "_idle", {})
        self._idle[slot] = str((info or {}).get("task", "")).startswith(("rotate_", "push_"))

    def act(self, obs, *, slot=0):
        if self._idle[slot]:
            pose = np.asarray(obs["robot_obs"], dtype=np.float32)[:6]
            return np.append(pose, np.float32(1.0))
        return super().act(obs, slot=slot)


def test_broken_policy_fails_naming_the_dropped_metrics():
    current = evaluate_for_regression(IdleOnRotateAndPush(), scene="D", chains=20, seed=0)
    assert current.in_a_row[0] < 20, "the broken policy should fail some chains"
    with pytest.raises(AssertionError) as failure:
        assert_no_regression(current, EXPERT_BASELINE)
    text = str(failure.value)
    assert "FAILED: significant drop in" in text
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("in_a_row_")}
    assert set(rows) == set(CHAIN_METRICS)
    for metric in CHAIN_METRICS:
        assert rows[metric].rstrip().endswith("DROP"), rows[metric]
    assert "policy differs" in text  # the report says what was compared with what


# ----------------------------------------------------------------------------- (c) compare on hand-made counts


def test_equal_counts_pass():
    report = compare(flat(28, 30), flat(28, 30))
    assert report.passed and report.regressions == []
    assert all(r.verdict == "ok" for r in report.results)


def test_clear_drop_fails():
    report = compare(flat(10, 30), flat(28, 30))
    assert not report.passed
    assert report.regressions == CHAIN_METRICS
    assert report["in_a_row_1"].p_adjusted < 1e-4
    assert "DROP" in str(report) and "28/30 (93.3%)" in str(report) and "10/30 (33.3%)" in str(report)


def test_small_noisy_difference_passes():
    report = compare(flat(26, 30), flat(28, 30))
    assert report.passed
    assert 0.1 < report["in_a_row_1"].p_value < 0.5


def test_improvement_never_fails():
    report = compare(flat(30, 30), flat(10, 30))
    assert report.passed
    assert report["in_a_row_1"].p_value == pytest.approx(1.0)


def test_drop_only_in_the_last_metric_is_named():
    base = counts(30, (30, 30, 30, 30, 30))
    report = compare(counts(30, (30, 30, 30, 29, 12)), base)
    assert report.regressions == ["in_a_row_5"]
    assert report["in_a_row_4"].verdict == "ok"


def test_holm_correction_keeps_a_lone_borderline_drop_from_failing():
    # 30/30 -> 24/30 alone: p ~ 0.0068 < alpha = 0.01, but Holm over 5 metrics multiplies it by 5.
    base, current = counts(30, (30,) * 5), counts(30, (30, 30, 30, 30, 24))
    uncorrected = compare(current, base, alpha=0.01, correction="none")
    assert uncorrected.regressions == ["in_a_row_5"]
    holm = compare(current, base, alpha=0.01, correction="holm")
    assert holm.passed
    row = holm["in_a_row_5"]
    assert row.p_value < 0.01 < row.p_adjusted == pytest.approx(5 * row.p_value)


def test_holm_adjusted_values_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(1*0.04, previous)
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.9]) == [1.0, 1.0]
    assert holm_adjust([]) == []


def test_holm_is_step_down_not_bonferroni():
    # 6 tested metrics. Two large drops take the smallest p-values, so open_drawer (11/11 -> 5/11,
    # p ~ 0.0024) is tested at alpha / 4 = 0.0025 and fails; Bonferroni (alpha / 6) would pass it.
    base = counts(30, (30,) * 5, open_drawer=(11, 11))
    current = counts(30, (30, 30, 30, 10, 10), open_drawer=(5, 11))
    report = compare(current, base, alpha=0.01)
    p = report["task:open_drawer"].p_value
    assert 0.01 / 6 < p < 0.01 / 4
    assert report.regressions == ["in_a_row_4", "in_a_row_5", "task:open_drawer"]


def _boschloo_by_brute_force(x1: int, n1: int, x2: int, n2: int) -> float:
    """Boschloo's one-sided p (baseline x1/n1 better than current x2/n2) from its definition:
    statistic = Fisher's one-sided p, maximised over the common rate on a fine grid."""

    def fisher(a: int, b: int) -> float:
        return hypergeom.sf(a - 1, n1 + n2, a + b, n1)

    stat = np.array([[fisher(a, b) for b in range(n2 + 1)] for a in range(n1 + 1)])
    extreme = stat <= fisher(x1, x2) * (1 + 1e-9)
    best = 0.0
    for pi in np.linspace(0, 1, 2001):
        prob = np.outer(binom.pmf(np.arange(n1 + 1), n1, pi), binom.pmf(np.arange(n2 + 1), n2, pi))
        best = max(best, prob[extreme].sum())
    return best


@pytest.mark.parametrize("case", [(6, 6, 2, 6), (5, 6, 3, 7), (4, 8, 1, 6), (6, 6, 5, 6)])
def test_pvalue_matches_the_definition_of_boschloos_test(case):
    p, test = drop_pvalue(*case)
    assert test == "boschloo"
    assert p == pytest.approx(_boschloo_by_brute_force(*case), rel=1e-4)


def test_boschloo_is_more_powerful_than_fisher_and_large_tables_use_fisher():
    p_b, _ = drop_pvalue(28, 30, 24, 30, method="boschloo")
    p_f, _ = drop_pvalue(28, 30, 24, 30, method="fisher")
    assert p_b < p_f
    assert drop_pvalue(900, 1000, 870, 1000)[1] == "fisher"


def test_zero_trials_and_extreme_rates():
    assert drop_pvalue(0, 30, 0, 30) == (1.0, "boschloo")  # a 0 % baseline cannot drop
    assert drop_pvalue(30, 30, 30, 30) == (1.0, "boschloo")
    assert drop_pvalue(30, 30, 29, 30)[0] > 0.3  # one failure against a 100 % baseline is noise
    assert drop_pvalue(30, 30, 20, 30)[0] < 1e-3
    with pytest.raises(ValueError, match="no trials"):
        drop_pvalue(0, 0, 3, 10)
    # 0/0 task rows are listed as untested, not divided by zero
    base = counts(30, (30,) * 5, open_drawer=(0, 0), close_drawer=(12, 12))
    report = compare(counts(30, (30,) * 5, close_drawer=(12, 12)), base)
    assert report.passed
    assert report["task:open_drawer"].verdict == "no trials on a side"
    assert report["task:close_drawer"].tested


def test_nothing_testable_fails():
    report = compare(counts(0, (0,) * 5), flat(28, 30))
    assert not report.passed and report.regressions == []
    assert "nothing was tested" in str(report)


def test_task_metrics_need_enough_trials_on_both_sides():
    base = counts(30, (30,) * 5, open_drawer=(12, 12), stack_block=(9, 9))
    current = counts(30, (30,) * 5, open_drawer=(0, 12), stack_block=(0, 9))
    report = compare(current, base)
    assert report.regressions == ["task:open_drawer"]
    assert report["task:stack_block"].verdict == "< 10 trials"
    assert "lower than the baseline: stack_block 9/9->0/9" in str(report)
    assert compare(current, base, min_task_trials=9).regressions == ["task:open_drawer", "task:stack_block"]


def test_settings_that_change_rates_must_match():
    base = Counts(30, (30,) * 5, setting={"suite": "calvin", "scene": "D", "max_steps": 360})
    with pytest.raises(SettingMismatch, match="scene differs"):
        compare(Counts(30, (30,) * 5, setting={"scene": "A"}), base)
    with pytest.raises(SettingMismatch, match="max_steps"):
        compare(Counts(30, (30,) * 5, setting={"max_steps": 100}), base)


def test_counts_validation():
    with pytest.raises(ValueError, match="must not increase"):
        counts(30, (10, 12, 10, 10, 10))
    with pytest.raises(ValueError, match="successes <= trials"):
        counts(30, (31, 30, 30, 30, 30))
    with pytest.raises(ValueError, match="5 counts"):
        counts(30, (30, 30))
    with pytest.raises(ValueError, match="integers"):
        counts(30, (30, 30, 30, 30, 29.5))


def episode(chain: int, tasks: list[str], completed: int, error: bool = False) -> dict:
    attempted = min(completed + 1, 5)
    stop = "completed" if completed == 5 else ("error:boom" if error else f"timeout:{tasks[completed]}")
    return {
        "chain": chain,
        "position": chain,
        "tasks": tasks,
        "completed": completed,
        "steps": [10] * attempted,
        "stop_reason": stop,
    }


TASKS = ["open_drawer", "push_into_drawer", "turn_on_led", "stack_block", "close_drawer"]


def test_counts_of_a_calvin_summary_are_those_of_its_records():
    from bench.stats import summarize_chains
    from bench.suites import get_suite

    records = [episode(0, TASKS, 5), episode(1, TASKS, 2), episode(2, TASKS, 0, error=True)]
    summary = {"suite": "calvin", "scene": "D", **summarize_chains(records), "chain_ids": [0, 1, 2]}
    c = get_suite("calvin").regression_counts(summary)
    assert c.n_chains == 3 and c.in_a_row == (2, 2, 1, 1, 1) and c.n_errors == 1
    assert c.per_task["open_drawer"] == (2, 3)
    assert c.per_task["turn_on_led"] == (1, 2)
    assert c.per_task["close_drawer"] == (1, 1)
    assert c.avg_len == pytest.approx(7 / 3)
    assert c.setting == {"suite": "calvin", "scene": "D", "chains": {"source": "official", "first": 3}}


# ----------------------------------------------------------------------------- (d) baseline files


def test_save_load_round_trip(tmp_path):
    c = Counts(
        30,
        (30, 29, 29, 28, 28),
        {"open_drawer": (30, 30), "close_drawer": (29, 30), "stack_block": (85, 90)},
        setting={"suite": "calvin", "scene": "D", "policy": "expert", "seed": 0, "max_steps": 360},
    )
    path = Baseline(c, version="0.1.0", git_commit="abc", created="now").save(tmp_path / "sub" / "b.json")
    loaded = Baseline.load(path)
    assert loaded.counts == c and loaded.git_commit == "abc" and loaded.path == path
    data = json.loads(path.read_text())
    assert data["format"] == regression.counts.FORMAT and data["in_a_row"] == [30, 29, 29, 28, 28]
    assert data["per_task"]["stack_block"] == {"successes": 85, "trials": 90}


def test_episodic_suite_counts_from_a_simpler_run(tmp_path):
    from bench.suites.simpler import SimplerOptions, SimplerSuite

    run = tmp_path / "simpler_run"
    run.mkdir()
    rows = [("put_carrot_on_plate", "base", True), ("put_carrot_on_plate", "lighting_darker", False)]
    rows += [("move_near", "base", True)] * 3
    lines = [
        {"task": t, "variant": v, "episode": i, "success": ok, "stop_reason": "step_limit"}
        for i, (t, v, ok) in enumerate(rows)
    ]
    (run / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    suite = SimplerSuite()
    summary = suite.summarize(SimplerOptions(mode="variant_aggregation"), lines)
    (run / "summary.json").write_text(json.dumps({"suite": "simpler", "policy": "p", "seed": 0, **summary}))
    c = Counts.from_run_dir(run)
    assert c.in_a_row == () and c.avg_len is None and c.n_chains == 5
    assert c.per_task == {"move_near": (3, 3), "put_carrot_on_plate": (1, 2)}  # every variant counts
    assert c.metrics() == {"task:move_near": (3, 3), "task:put_carrot_on_plate": (1, 2)}
    assert c.setting["scene"] == "variant_aggregation"  # the mode stands in for the scene
    loaded = Baseline.load(Baseline(c).save(tmp_path / "b.json")).counts
    assert loaded.per_task == c.per_task and loaded.in_a_row == ()
    (run / "episodes.jsonl").write_text(json.dumps(lines[0]) + "\n")
    with pytest.raises(BaselineError, match="'n_episodes' says 5 episodes but episodes.jsonl holds 1"):
        Counts.from_run_dir(run)


def _write_baseline(tmp_path: Path, **changes) -> Path:
    data = json.loads(EXPERT_BASELINE.read_text())
    for key, value in changes.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(data))
    return path


def test_load_errors_name_the_file_and_the_key(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(BaselineError, match="no such baseline file.*refresh"):
        Baseline.load(missing)
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": \n')
    with pytest.raises(BaselineError, match=r"bad\.json: not valid JSON \(line 2"):
        Baseline.load(bad)
    cases = {
        "key 'in_a_row' is missing": {"in_a_row": None},
        "key 'n_chains' must be an integer": {"n_chains": "30"},
        "key 'format' must be": {"format": "something else"},
        "key 'format_version' is 99": {"format_version": 99},
        "key 'suite' is missing": {"suite": None},
        "key 'scene' must be a string": {"scene": 4},
        r"in_a_row\[0\].*successes <= trials": {"in_a_row": [31, 30, 29, 29, 28]},
        "'per_task' and 'in_a_row' disagree": {"in_a_row": [30, 30, 30, 29, 28]},
        r"per_task\.open_drawer: key 'trials' is missing": {"per_task": {"open_drawer": {"successes": 1}}},
    }
    for message, change in cases.items():
        path = _write_baseline(tmp_path, **change)
        with pytest.raises(BaselineError, match=message) as err:
            Baseline.load(path)
        assert str(path) in str(err.value)


def test_assert_no_regression_with_a_missing_baseline(tmp_path):
    with pytest.raises(BaselineError, match="nope.json"):
        assert_no_regression(flat(3, 3), tmp_path / "nope.json")


# ----------------------------------------------------------------------------- run folders and the CLI


def write_run(folder: Path, records: list[dict], **summary_extra) -> Path:
    from bench.stats import summarize_chains

    folder.mkdir(parents=True)
    (folder / "episodes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    summary = {"suite": "calvin", "policy": "expert", "scene": "D", "seed": 0, "max_steps": 360}
    summary.update(summarize_chains(records), chains_source="official", **summary_extra)
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_check_cli_exit_codes(tmp_path, capsys):
    good = write_run(tmp_path / "good", [episode(i, TASKS, 5) for i in range(30)])
    bad = write_run(tmp_path / "bad", [episode(i, TASKS, 5 if i < 8 else 0) for i in range(30)])
    baseline = tmp_path / "b.json"
    assert regression.main(["refresh", "--from-run", str(good), "--out", str(baseline)]) == 0
    assert Baseline.load(baseline).counts.in_a_row == (30,) * 5
    assert regression.main(["check", str(good), "--baseline", str(baseline)]) == 0
    assert "PASSED" in capsys.readouterr().out
    assert regression.main(["check", str(bad), "--baseline", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "8/30" in out
    assert regression.main(["check", str(tmp_path / "none"), "--baseline", str(baseline)]) == 2
    assert regression.main(["check", str(good), "--baseline", str(tmp_path / "none.json")]) == 2
    assert "none.json" in capsys.readouterr().err


def test_run_folder_checks(tmp_path):
    records = [episode(i, TASKS, 5) for i in (4, 5, 6)]
    run = write_run(tmp_path / "run", records, chain_ids=[4, 5, 6])
    c = Counts.from_run_dir(run)
    assert c.setting["chains"] == {"source": "official", "ids": [4, 5, 6]}
    assert c.in_a_row == (3,) * 5 and c.setting["scene"] == "D"
    (run / "episodes.jsonl").unlink()  # counts from summary.json alone
    assert Counts.from_run_dir(run).in_a_row == (3,) * 5
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    with pytest.raises(BaselineError, match="summary.json: missing"):
        Counts.from_run_dir(unfinished)
    short = write_run(tmp_path / "short", records)
    (short / "episodes.jsonl").write_text(json.dumps(records[0]) + "\n")
    with pytest.raises(BaselineError, match="'n_chains' says 3 chains but episodes.jsonl holds 1"):
        Counts.from_run_dir(short)


def test_real_bench_run_folder_and_refresh_with_a_policy(tmp_path, capsys):
    from bench import run

    folder = tmp_path / "run"
    assert run.main(["--policy", "expert", "--chains", "2", "--out", str(folder), "--quiet"]) == 0
    assert regression.main(["check", str(folder), "--baseline", str(EXPERT_BASELINE)]) == 0
    out = tmp_path / "b.json"
    argv = ["refresh", "--policy", "expert", "--chain-ids", "0,1", "--out", str(out)]
    assert regression.main(argv) == 0
    refreshed = Baseline.load(out)
    stored = Counts.from_run_dir(folder)
    assert refreshed.setting["chains"] == stored.setting["chains"] == {"source": "official", "first": 2}
    assert (refreshed.counts.in_a_row, refreshed.counts.per_task) == (stored.in_a_row, stored.per_task)
    assert refreshed.command.endswith("--out " + str(out))
    assert regression.main(["refresh", "--out", str(out)]) == 2  # neither --policy nor --from-run
    assert regression.main(["refresh", "--from-run", str(folder), "--chains", "3", "--out", str(out)]) == 2
    assert "refresh --from-run reads a finished run: drop --chains 3" in capsys.readouterr().err
    argv = ["refresh", "--policy", "expert", "--shard", "0/2", "--out", str(out)]
    assert regression.main(argv) == 2
    assert "writes no run folder: drop --shard" in capsys.readouterr().err
