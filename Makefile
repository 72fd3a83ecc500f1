# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install mmsearch, start the web app on http://127.0.0.1:7860
#   make test   create .venv, install mmsearch with test extras (+ Chromium via apt), run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A matching torch/torchvision pair; override on other platforms, e.g. make run TORCH="torch torchvision"
TORCH ?= torch==2.14.1 torchvision==0.29.1

export GRADIO_ANALYTICS_ENABLED ?= False
export HF_HUB_DISABLE_TELEMETRY ?= 1
export NUMBA_CACHE_DIR ?= $(CURDIR)/.numba_cache

.PHONY: run test install install-test browser sounds bench clean

$(VENV)/.torch:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH)
	touch $@

$(VENV)/.installed: $(VENV)/.torch pyproject.toml
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(PY) app.py

# Headless Chromium for the browser tests, from Debian's packages (never `playwright install`).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# Real sounds for the audio and video tests (bell, complete, ... under /usr/share/sounds/freedesktop).
sounds:
	@if [ ! -f /usr/share/sounds/freedesktop/stereo/bell.oga ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq sound-theme-freedesktop >/dev/null; \
	fi

test: install-test browser sounds
	HF_HUB_OFFLINE=1 $(PY) -m pytest

bench: install-test
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache
