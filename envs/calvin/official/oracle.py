"""Our oracle against CALVIN's ``Tasks``: the differential check.

:func:`differential` judges state pairs (:mod:`envs.calvin.official.pairs`) with our oracle and
with a reference: CALVIN's ``Tasks`` (:func:`calvin_tasks`, fed with
:func:`envs.calvin.official.info.to_calvin_info`) or its stored verdicts: those CALVIN's ``Tasks``
gives on the default pairs are in ``envs/calvin/data/oracle_verdicts.json``, so the comparison
also runs without a checkout.

CLI: ``python -m envs.calvin.official.oracle`` prints the per-task agreement (with CALVIN's
``Tasks`` when a checkout is found, else against the stored verdicts; :func:`oracle_agreement`
returns it); ``--json FILE`` writes it too; ``--write`` stores the verdicts of the checkout's
``Tasks`` (it refuses to overwrite a file that differs unless ``--force``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from envs.calvin.official.checkout import (
    COMMIT,
    TASKS_CONFIG,
    CalvinEnvUnavailable,
    find_checkout,
    import_module,
)
from envs.calvin.official.info import FINGER_LINKS, to_calvin_info
from envs.calvin.official.pairs import DEFAULT_PAIRS, DEFAULT_SEED, Pair, pairs_digest, synthetic_pairs
from envs.calvin.tasks import RULES, TASK_NAMES

VERDICTS_FILE = "data/oracle_verdicts.json"


def calvin_tasks(root: Path | None = None) -> Any:
    """CALVIN's ``Tasks`` oracle built from the checkout's own task config."""
    root = find_checkout(root)
    import_module(root, "calvin_env.envs.tasks")
    hydra_utils = import_module(root, "hydra.utils")
    omegaconf = import_module(root, "omegaconf")
    return hydra_utils.instantiate(omegaconf.OmegaConf.load(root / TASKS_CONFIG))


# --- verdicts and agreement ---------------------------------------------------------------------
def our_verdicts(pairs: list[Pair]) -> dict[str, np.ndarray]:
    """Per task, our oracle's verdict on every pair."""
    return {t: np.array([bool(RULES[t](s, e)) for s, e in pairs]) for t in TASK_NAMES}


def calvin_verdicts(pairs: list[Pair], tasks: Any) -> dict[str, np.ndarray]:
    """Per task, CALVIN's ``Tasks`` verdict on every pair (converted with :func:`to_calvin_info`)."""
    done = []
    for i, (s, e) in enumerate(pairs):
        # vary the number of points per pair and the touching robot links: CALVIN's rules must not care
        links = FINGER_LINKS if i % 2 else FINGER_LINKS[:1]
        done.append(
            tasks.get_task_info(
                to_calvin_info(s, robot_links=links, points=1 + i % 3), to_calvin_info(e, robot_links=links)
            )
        )
    return {t: np.array([t in d for d in done]) for t in TASK_NAMES}


def _pack(bits: np.ndarray) -> str:
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _unpack(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[:n].astype(bool)


def stored_verdicts(pairs: list[Pair], path: Path | None = None) -> dict[str, np.ndarray]:
    """CALVIN's verdicts on ``pairs`` as stored; an error if they were made from other pairs."""
    text = path.read_text() if path else resources.files("envs.calvin").joinpath(VERDICTS_FILE).read_text()
    data = json.loads(text)
    digest = pairs_digest(pairs)
    if data["pairs_sha256"] != digest or data["n"] != len(pairs):
        raise ValueError(
            f"{VERDICTS_FILE} holds verdicts for other pairs (sha256 {data['pairs_sha256'][:12]}, n={data['n']}) than these "
            f"(sha256 {digest[:12]}, n={len(pairs)}); rerun python -m envs.calvin.official.oracle --write with a checkout"
        )
    return {t: _unpack(data["verdicts"][t], len(pairs)) for t in TASK_NAMES}


def verdicts_record(pairs: list[Pair], verdicts: Mapping[str, np.ndarray], seed: int) -> dict:
    """The JSON record of CALVIN's verdicts on ``synthetic_pairs(len(pairs), seed)``."""
    return {
        "about": "CALVIN's Tasks (calvin_env/envs/tasks.py, conf/tasks/new_playtable_tasks.yaml) on synthetic_pairs(n, seed)",
        "calvin_commit": COMMIT,
        "n": len(pairs),
        "seed": seed,
        "pairs_sha256": pairs_digest(pairs),
        "positives": {t: int(verdicts[t].sum()) for t in TASK_NAMES},
        "verdicts": {t: _pack(verdicts[t]) for t in TASK_NAMES},
    }


def differential(
    pairs: list[Pair], reference: Mapping[str, np.ndarray], ours: Callable[[list[Pair]], dict] = our_verdicts
) -> dict[str, dict[str, int | float]]:
    """Per task: pairs, agreements, agreement rate and positives of both oracles."""
    mine = ours(pairs)
    out = {}
    for t in TASK_NAMES:
        agree = int((mine[t] == reference[t]).sum())
        out[t] = {
            "pairs": len(pairs),
            "agree": agree,
            "agreement": agree / len(pairs),
            "ours_true": int(mine[t].sum()),
            "calvin_true": int(reference[t].sum()),
        }
    return out


def oracle_agreement(
    n: int = DEFAULT_PAIRS, seed: int = DEFAULT_SEED, root: Path | None = None
) -> dict[str, Any]:
    """Our oracle against CALVIN's ``Tasks`` on ``synthetic_pairs(n, seed)``.

    CALVIN's ``Tasks`` judges when a checkout is found (``root``, else ``CALVIN_ENV_DIR``...), the
    stored verdicts otherwise. Returns ``source``, ``overall`` (the fraction of agreeing verdicts)
    and ``tasks`` (:func:`differential`'s rows).
    """
    pairs = synthetic_pairs(n, seed)
    try:
        reference, source = calvin_verdicts(pairs, calvin_tasks(root)), "CALVIN's Tasks"
    except CalvinEnvUnavailable as exc:
        reference, source = stored_verdicts(pairs), f"stored verdicts ({exc})"
    table = differential(pairs, reference)
    overall = sum(r["agree"] for r in table.values()) / sum(r["pairs"] for r in table.values())
    return {"source": source, "pairs": n, "seed": seed, "overall": overall, "tasks": table}


def _write_verdicts(n: int, seed: int, force: bool) -> int:
    pairs = synthetic_pairs(n, seed)
    target = Path(__file__).resolve().parents[1] / VERDICTS_FILE
    text = json.dumps(verdicts_record(pairs, calvin_verdicts(pairs, calvin_tasks()), seed), indent=1) + "\n"
    if target.exists() and target.read_text() != text and not force:
        print(f"error: {target} exists and differs; add --force to replace it", file=sys.stderr)
        return 2
    target.write_text(text)
    print(f"wrote {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=DEFAULT_PAIRS, help="number of synthetic state pairs")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--write", action="store_true", help=f"store the checkout's verdicts in envs/calvin/{VERDICTS_FILE}"
    )
    parser.add_argument(
        "--force", action="store_true", help="with --write: replace a stored file that differs"
    )
    parser.add_argument("--json", type=Path, help="also write the agreement to this (new) JSON file")
    args = parser.parse_args(argv)
    if args.json is not None and args.json.exists():
        parser.error(f"--json {args.json} exists; choose a new file")
    if args.write and (code := _write_verdicts(args.n, args.seed, args.force)):
        return code
    result = oracle_agreement(args.n, args.seed)
    print(f"{args.n} pairs, reference: {result['source']}")
    print(f"{'task':28s} {'agree':>7s} {'ours':>6s} {'calvin':>6s}")
    for t, row in result["tasks"].items():
        print(f"{t:28s} {row['agreement']:7.2%} {row['ours_true']:6d} {row['calvin_true']:6d}")
    print(f"overall agreement {result['overall']:.4%} ({len(TASK_NAMES)} tasks x {args.n} pairs)")
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if result["overall"] == 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
