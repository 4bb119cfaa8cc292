"""``python -m bench.figures``: see :mod:`bench.figures`."""

import sys

from bench.figures import main

sys.exit(main())
