import sys

from bench.regression import main

sys.exit(main())
