"""Evaluate a policy on a benchmark suite: ``python -m bench.run --suite NAME --policy SPEC --out DIR``.

Example::

    python -m bench.run --policy random --chains 20 --workers 4 --out runs/random_D
    python -m bench.run --suite simpler --policy expert --out runs/simpler_expert
    python -m bench.run --suite simpler --help      # the options of one suite

writes ``DIR/config.json`` (options, version, git commit, machine, policy provenance),
``DIR/episodes.jsonl`` (one line per unit as it finishes), ``DIR/summary.json`` and, with
``--record N``, videos of the first N units in ``DIR/videos``. ``--resume DIR`` continues an
interrupted run. The suites are in :mod:`bench.suites`; the run itself in :mod:`bench.session`.
Exit codes: 0 done, 1 the run failed, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import sys

from bench.session import main

if __name__ == "__main__":
    sys.exit(main())
