"""``python -m bench.fidelity``."""

from bench.fidelity import main

raise SystemExit(main())
