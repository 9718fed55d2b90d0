# Benchmark (issue 3): `make bench` compares this predictor with MLServer and the minimal
# KServe predictor on this machine (~35 min). Not part of `make test`; a smoke test of the
# harness is (tests/bench/), and `tools` below installs what it needs.
BENCH_VENV := bench/.venv-mlserver
BENCH_ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: bench bench-tools bench-mlserver bench-smoke

bench-tools: $(VENV)/.installed ## wrk + h2load (Debian: wrk, nghttp2-client) and matplotlib for bench/
	@command -v wrk >/dev/null 2>&1 && command -v h2load >/dev/null 2>&1 || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq wrk nghttp2-client >/dev/null; }
	@$(PY) -c "import matplotlib" 2>/dev/null || $(PIP) install --quiet -r bench/requirements.txt

$(BENCH_VENV)/.installed: bench/requirements-mlserver.txt $(VENV)/.installed
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements-mlserver.txt \
		"scikit-learn==$$($(PY) -c 'import sklearn; print(sklearn.__version__)')"
	touch $@

bench-mlserver: $(BENCH_VENV)/.installed ## MLServer 1.7 + mlserver-sklearn in bench/.venv-mlserver

bench: install bench-tools bench-mlserver ## full benchmark; writes bench/results/<date>.{json,md,png}
	$(PY) bench/run.py $(BENCH_ARGS)

bench-smoke: install bench-tools ## the harness end to end on 1 s runs (what tests/bench/ does)
	$(PY) bench/run.py --smoke --out bench/work/smoke-results

tools:: bench-tools
