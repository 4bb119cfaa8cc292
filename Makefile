# The two commands of README: `make demo` (install everything, run the expert on scene D) and `make test`.
PYTHON ?= python3
RUN_DIR ?= runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: install system-deps demo test test-slow lint perf

# openpi-client (the client of the openpi interop tests) pins numpy<2, which would break pandas 3; it runs
# on numpy 2, so it goes in without its pins (its one other dependency, dm-tree, is in the dev extra).
install: system-deps
	$(PYTHON) -m pip install "torch==2.13.0" -e ".[dev,calvin-env]"
	$(PYTHON) -m pip install --no-deps "openpi-client==0.1.2"

# A Vulkan device for SAPIEN (the SimplerEnv-style suite): Mesa 25 lavapipe on Debian 12. Needs root.
system-deps:
	@if [ "$$(id -u)" = "0" ]; then bash scripts/install_vulkan.sh; \
	else echo "system-deps: not root; run 'sudo bash scripts/install_vulkan.sh' for the SimplerEnv-style suite"; fi

demo: install
	$(PYTHON) -m bench.run --policy expert --suite calvin --scene D --chains 100 --workers 2 --seed 0 --out $(RUN_DIR)

test:
	$(PYTHON) -m pytest -q -n 2

# Regression runs of stored results (expert and trained-checkpoint success rates): minutes each.
test-slow:
	$(PYTHON) -m pytest -q -n 2 -m slow

lint:
	$(PYTHON) -m ruff check . && $(PYTHON) -m ruff format --check .

perf:
	$(PYTHON) -m bench.perf env
