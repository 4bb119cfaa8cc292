"""``python -m bench.fidelity``."""

from bench.fidelity.cli import main

raise SystemExit(main())
