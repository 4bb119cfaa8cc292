"""Evaluate a policy on a benchmark suite: ``python -m bench.run --suite NAME --policy SPEC --out DIR``.

``python -m bench.run --suite NAME --help`` lists a suite's options; the run itself (folder, resume,
workers, exit codes) is :mod:`bench.session`, the suites are :mod:`bench.suites`.
"""

from __future__ import annotations

import sys

from bench.session import main

if __name__ == "__main__":
    sys.exit(main())
