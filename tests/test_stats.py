import math

import pytest

from bench import stats


def wilson_closed_form(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def test_wilson_known_values():
    low, high = stats.wilson_interval(5, 10)
    assert low == pytest.approx(0.236593, abs=1e-6)
    assert high == pytest.approx(0.763407, abs=1e-6)
    assert stats.wilson_interval(0, 10) == pytest.approx((0.0, 0.277533), abs=1e-6)
    assert stats.wilson_interval(10, 10) == pytest.approx((0.722467, 1.0), abs=1e-6)
    assert stats.wilson_interval(1, 4) == pytest.approx((0.045587, 0.699358), abs=1e-6)


@pytest.mark.parametrize(("k", "n"), [(3, 7), (50, 100), (1, 1000), (999, 1000), (17, 20)])
def test_wilson_matches_closed_form(k, n):
    assert stats.wilson_interval(k, n) == pytest.approx(wilson_closed_form(k, n), abs=1e-9)


def test_wilson_edge_cases():
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    narrow = stats.wilson_interval(5, 10, confidence=0.5)
    wide = stats.wilson_interval(5, 10)
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        stats.wilson_interval(11, 10)
    with pytest.raises(ValueError):
        stats.wilson_interval(-1, 10)


def test_success_rates_and_average_length():
    assert stats.success_rates([0, 1, 5, 3]) == [0.75, 0.5, 0.5, 0.25, 0.25]
    assert stats.average_length([0, 1, 5, 3]) == pytest.approx(2.25)
    assert stats.success_rates([5, 5]) == [1.0] * 5
    assert stats.success_rates([0, 0, 0]) == [0.0] * 5
    assert stats.average_length([2]) == 2.0
    # average length is the sum of the success rates
    completed = [0, 2, 2, 4, 1, 5, 3]
    assert sum(stats.success_rates(completed)) == pytest.approx(stats.average_length(completed))


def test_success_rates_ci():
    cis = stats.success_rates_ci([0, 1, 5, 3])
    assert len(cis) == 5
    assert cis[0] == pytest.approx(stats.wilson_interval(3, 4))
    assert cis[4] == pytest.approx(stats.wilson_interval(1, 4))


@pytest.mark.parametrize("bad", [[], [6], [-1, 2]])
def test_chain_metrics_reject_bad_input(bad):
    with pytest.raises(ValueError):
        stats.success_rates(bad)
    with pytest.raises(ValueError):
        stats.average_length(bad)


def test_chain_trials():
    tasks = ["a", "b", "c", "d", "e"]
    assert stats.chain_trials(tasks, 2, 3) == [("a", True), ("b", True), ("c", False)]
    assert stats.chain_trials(tasks, 5, 5) == [(t, True) for t in tasks]
    assert stats.chain_trials(tasks, 0, 0) == []
    with pytest.raises(ValueError):
        stats.chain_trials(tasks, 3, 2)


def test_per_task_table():
    trials = stats.chain_trials(["open", "lift", "push", "x", "y"], 2, 3)
    trials += stats.chain_trials(["lift", "open", "x", "y", "z"], 0, 1)
    trials += stats.chain_trials(["open", "push", "lift", "x", "y"], 5, 5)
    table = stats.per_task_table(trials, tasks=["never"])
    assert list(table) == sorted(table)
    assert table["open"]["successes"] == 2 and table["open"]["trials"] == 2
    assert table["lift"] == {
        "successes": 2,
        "trials": 3,
        "rate": pytest.approx(2 / 3),
        "ci_low": pytest.approx(stats.wilson_interval(2, 3)[0]),
        "ci_high": pytest.approx(stats.wilson_interval(2, 3)[1]),
    }
    assert table["push"]["successes"] == 1 and table["push"]["trials"] == 2
    assert "z" not in table  # never attempted: the chain stopped before it
    assert table["never"] == {"successes": 0, "trials": 0, "rate": None, "ci_low": 0.0, "ci_high": 1.0}


def test_summarize():
    records = [
        {"tasks": list("abcde"), "completed": 2, "steps": [3, 4, 8], "stop_reason": "timeout:c"},
        {"tasks": list("bacde"), "completed": 0, "steps": [1], "stop_reason": "error:policy raised"},
        {"tasks": list("edcba"), "completed": 5, "steps": [1, 1, 1, 1, 1], "stop_reason": "completed"},
    ]
    summary = stats.summarize_chains(records)
    assert summary["success_rates"] == pytest.approx([2 / 3, 2 / 3, 1 / 3, 1 / 3, 1 / 3])
    assert summary["avg_len"] == pytest.approx(7 / 3)
    assert summary["env_steps"] == 21 and summary["n_errors"] == 1
    assert summary["per_task"]["b"]["trials"] == 3 and summary["per_task"]["b"]["successes"] == 2
    assert summary["per_task"]["c"] == {**summary["per_task"]["c"], "successes": 1, "trials": 2}
