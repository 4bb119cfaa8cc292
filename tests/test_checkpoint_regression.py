"""The committed tiny trained checkpoint still loads, runs through bench.run and holds its baseline.

``results/checkpoints/kosmos_os_cont_tiny_abc`` is the one-step continuous Kosmos policy (tiny size)
trained on 1068 expert demonstrations from scenes A, B, C of the first play table; its baseline is
its 100-chain run on D of the table rebuilt to CALVIN's geometry (``results/runs/vla_kosmos_os_cont_abc2_D``),
where it is no better than random (the old table's run is in ``results/archive/calvin_old_table``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.regression import Baseline, assert_no_regression, evaluate_for_regression

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "results" / "checkpoints" / "kosmos_os_cont_tiny_abc"
BASELINE = ROOT / "results" / "baselines" / "vla_kosmos_os_cont_tiny_D.json"


def test_baseline_describes_the_checkpoint_run() -> None:
    import json

    baseline = Baseline.load(BASELINE)
    assert baseline.counts.setting["suite"] == "calvin" and baseline.counts.setting["scene"] == "D"
    assert baseline.counts.n_chains == 100
    run = json.loads((ROOT / "results" / "runs" / "vla_kosmos_os_cont_abc2_D" / "summary.json").read_text())
    assert run["n_chains"] == 100 and run["env"] == "ours"
    first = round(run["success_rates"][0] * run["n_chains"])
    assert baseline.counts.in_a_row[0] == first, "the baseline must be the stored run's counts"


@pytest.mark.slow  # 12 chains of a policy that mostly times out: about 7 minutes on 2 cores
def test_checkpoint_holds_its_baseline() -> None:
    current = evaluate_for_regression(f"vla:{CHECKPOINT}", scene="D", chains=12, seed=0, workers=2)
    assert current.n_chains == 12 and current.n_errors == 0
    report = assert_no_regression(current, BASELINE)
    assert report.passed


def test_run_records_the_checkpoint_hash_and_machine(tmp_path) -> None:
    import hashlib
    import json

    from bench.run import main

    out = tmp_path / "run"
    assert (
        main(
            [
                "--policy",
                f"vla:{CHECKPOINT}",
                "--chains",
                "1",
                "--max-steps",
                "3",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    config = json.loads((out / "config.json").read_text())
    expected = hashlib.sha256((CHECKPOINT / "model.safetensors").read_bytes()).hexdigest()
    assert config["policy_provenance"]["checkpoint_sha256"] == expected
    assert config["policy_provenance"]["checkpoint"] == str(CHECKPOINT.resolve())
    assert config["machine"]["cpus"] >= 1 and config["git_commit"]


# The sanity ladder's first rung: the default variant with proprioception, trained on one task
# (open_drawer) in one scene (D), evaluated on the official chains that start with that task.
LADDER_CHECKPOINT = ROOT / "results" / "checkpoints" / "paligemma_ph_lstm_state_open_drawer_D"
LADDER_BASELINE = ROOT / "results" / "baselines" / "vla_paligemma_ph_lstm_state_open_drawer_D.json"
LADDER_RUN = ROOT / "results" / "runs" / "ladder_rung1_open_drawer_state"


def shipped_run(checkpoint: Path, run: Path) -> tuple[dict, dict]:
    """The stored run's config and summary, after checking that it evaluated ``checkpoint``'s weights."""
    import hashlib
    import json

    config = json.loads((run / "config.json").read_text())
    weights = hashlib.sha256((checkpoint / "model.safetensors").read_bytes()).hexdigest()
    assert config["policy_provenance"]["checkpoint_sha256"] == weights
    return config, json.loads((run / "summary.json").read_text())


def test_ladder_checkpoint_is_the_one_its_run_evaluated() -> None:
    _, summary = shipped_run(LADDER_CHECKPOINT, LADDER_RUN)
    assert summary["first_task"] == "open_drawer" and summary["n_chains"] == 40
    baseline = Baseline.load(LADDER_BASELINE)
    assert baseline.counts.in_a_row[0] == round(summary["success_rates"][0] * 40)


@pytest.mark.slow  # 10 one-task chains that mostly end after their first task: about 2 minutes on 2 cores
def test_ladder_checkpoint_holds_its_baseline() -> None:
    current = evaluate_for_regression(
        f"vla:{LADDER_CHECKPOINT}",
        scene="D",
        first_task="open_drawer",
        chains=10,
        max_steps=150,
        seed=0,
        workers=2,
    )
    assert current.n_chains == 10 and current.n_errors == 0
    report = assert_no_regression(current, LADDER_BASELINE)
    assert report.passed


# The sanity ladder's second rung after three DAgger rounds (python -m trainer.dagger): all 34 tasks
# in scene D, evaluated on the first 100 official chains of D.
DAGGER_CHECKPOINT = ROOT / "results" / "checkpoints" / "paligemma_ph_lstm_state_dagger_D"
DAGGER_BASELINE = ROOT / "results" / "baselines" / "vla_paligemma_ph_lstm_state_dagger_D.json"
DAGGER_RUN = ROOT / "results" / "runs" / "ladder_rung2_dagger_D"
DAGGER_LOG = ROOT / "results" / "train" / "paligemma_ph_lstm_state_dagger_dd"


def test_dagger_checkpoint_is_the_one_its_run_evaluated_and_its_rounds_are_logged() -> None:
    import json

    config, summary = shipped_run(DAGGER_CHECKPOINT, DAGGER_RUN)
    baseline = Baseline.load(DAGGER_BASELINE)
    assert summary["n_chains"] == 100 and baseline.counts.n_chains == 100
    assert baseline.counts.in_a_row[0] == round(summary["success_rates"][0] * 100)
    state = json.loads((DAGGER_LOG / "dagger.json").read_text())
    rounds = state["rounds"]
    assert [r["round"] for r in rounds][:3] == [0, 1, 2] and all(r["trained"] for r in rounds[:3])
    # the shipped weights are round 2's: round 3 (also logged) did worse on the same chains
    assert rounds[2]["checkpoint"] == config["policy_provenance"]["checkpoint"]
    assert [round(r["beta"], 4) for r in rounds[:3]] == [0.5, 0.35, 0.245]
    steps = json.loads((DAGGER_CHECKPOINT / "trainer_state.json").read_text())["step"]
    assert steps == 4500 and (DAGGER_LOG / "round_2" / "train_log.jsonl").exists()


@pytest.mark.slow  # 10 chains of up to 5 x 360 steps: about 3 minutes on 2 cores
def test_dagger_checkpoint_holds_its_baseline() -> None:
    current = evaluate_for_regression(
        f"vla:{DAGGER_CHECKPOINT}", scene="D", chains=10, max_steps=360, seed=0, workers=2
    )
    assert current.n_chains == 10 and current.n_errors == 0
    report = assert_no_regression(current, DAGGER_BASELINE)
    assert report.passed
