# The two commands of README: `make demo` (install everything, run the expert on scene D) and `make test`.
PYTHON ?= python3
RUN_DIR ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: install demo test lint perf

install:
	$(PYTHON) -m pip install "torch==2.13.0" -e ".[dev]"

demo: install
	$(PYTHON) -m bench.run --policy expert --suite calvin --scene D --chains 100 --workers 2 --seed 0 --out $(RUN_DIR)

test:
	$(PYTHON) -m pytest -q -n 2

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .

perf:
	$(PYTHON) -m bench.perf env
