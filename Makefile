# Quick start:
#   make test       set up .venv and the browser client, then run the whole test suite
#   make chatroom   set up, then run the chat-room example
#
# Works as root on a fresh Debian machine (missing system packages are installed with apt-get)
# and as an ordinary user who already has python3-venv, npm and /usr/bin/chromium.

PYTHON      ?= python3
VENV        ?= .venv
VPY         := $(VENV)/bin/python
STAMP       := $(VENV)/.sockettornad-io-installed
CLIENT_JS   := node_modules/socket.io/support/socket.io-client/socket.io.js
NPM_STAMP   := node_modules/.sockettornad-io-installed
CHROMIUM    := /usr/bin/chromium
PYTEST_ARGS ?=

APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q

.PHONY: setup lint test chatroom chromium clean distclean _need-venv _need-npm _need-chromium

# Installs a Debian package when running as root, otherwise stops with what to install.
#   $(call need_pkg,<debian package>,<what is missing>)
define need_pkg
	@if [ "$$(id -u)" = 0 ]; then \
		echo ">>> $(2) is missing: installing the Debian package '$(1)'"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && $(APT_INSTALL) $(1) >/dev/null; \
	else \
		echo "error: $(2) is missing. Install it first, e.g.: sudo apt-get install $(1)" >&2; \
		exit 1; \
	fi
endef

setup: $(STAMP) $(NPM_STAMP)
	@:

$(VPY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: $(PYTHON) must be Python 3.11 or newer ($$($(PYTHON) --version 2>&1))" >&2; exit 1; }
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' >/dev/null 2>&1; then \
		$(MAKE) --no-print-directory _need-venv; \
	fi
	@echo ">>> creating $(VENV)"
	@$(PYTHON) -m venv $(VENV)

_need-venv:
	$(call need_pkg,python3-venv,Python's venv module (python3 -m venv))

# Reinstall when the packaging changes (or tornad_io/__init__.py appears, so that the editable
# install maps the package).
$(STAMP): setup.py pyproject.toml $(wildcard tornad_io/__init__.py) | $(VPY)
	@echo ">>> installing SocketTornad.IO (editable) with its test dependencies into $(VENV)"
	@$(VPY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

# The real Socket.IO 0.6.3 browser client ships inside the socket.io@0.6.18 npm package
# (jQuery is for the 2010-style compatibility page). Reinstalled when package.json changes.
$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory _need-npm
	@echo ">>> npm install (socket.io 0.6.18, for its browser client)"
	@npm install --no-audit --no-fund --loglevel=error
	@test -f $(CLIENT_JS) || { echo "error: npm install did not produce $(CLIENT_JS)" >&2; exit 1; }
	@touch $@

_need-npm:
	$(call need_pkg,npm,npm (Node.js package manager))

# The browser tests drive Debian's Chromium (never a downloaded browser build).
chromium:
	@test -x $(CHROMIUM) || $(MAKE) --no-print-directory _need-chromium
	@test -x $(CHROMIUM) || { echo "error: $(CHROMIUM) still missing" >&2; exit 1; }

_need-chromium:
	$(call need_pkg,chromium,$(CHROMIUM) (Debian package 'chromium'))

# Static checks: part of `make test`, so CI runs them too.
lint: setup
	$(VPY) -m ruff check tornad_io tests examples bench
	$(VPY) -m mypy --strict tornad_io

test: setup chromium lint
	$(VPY) -m pytest $(PYTEST_ARGS)

chatroom: setup
	$(VPY) examples/chatroom/chatroom.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -not -path './node_modules/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules

# -- benchmark (bench/README.md) --------------------------------------------------------------------
# `make bench` installs what the benchmark needs beyond the test setup (python-socketio, py-spy),
# then runs it (about 6 minutes; results in bench/results/latest.json and the bench/README.md table).

BENCH_STAMP := $(VENV)/.bench-requirements-installed
BENCH_ARGS  ?=

.PHONY: bench bench-setup bench-smoke bench-profile bench-attacks

bench-setup: $(BENCH_STAMP)
	@:

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	@echo ">>> installing the benchmark's requirements (bench/requirements.txt) into $(VENV)"
	@$(VPY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	@touch $@

bench: bench-setup
	$(VPY) -m bench.run $(BENCH_ARGS)

bench-smoke: bench-setup
	$(VPY) -m bench.run --smoke

bench-profile: bench-setup
	$(VPY) -m bench.profile --output bench/results/profile.md $(BENCH_ARGS)

# Hostile and slow clients against tornad_io (bench/attacks.py; 2 to 5 minutes, only the test setup
# needed): results in bench/results/attacks.json and the Attacks section of bench/README.md.
# `make bench-attacks ATTACKS_ARGS=--quick` runs the short version (about a minute).
ATTACKS_ARGS ?=

bench-attacks: setup
	$(VPY) -m bench.attacks --update-readme $(ATTACKS_ARGS)
