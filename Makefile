# Quick start:
#   make test       set up .venv and the browser client, then run the whole test suite
#   make chatroom   set up, then run the chat-room example
#
# Works as root on a fresh Debian machine (missing system packages are installed with apt-get)
# and as an ordinary user who already has python3-venv and npm (the system packages the tests use
# are then named when missing, and the tests that need them are skipped: see `system-packages`).

PYTHON      ?= python3
VENV        ?= .venv
VPY         := $(VENV)/bin/python
STAMP       := $(VENV)/.sockettornad-io-installed
CLIENT_JS   := node_modules/socket.io/support/socket.io-client/socket.io.js
CLIENT_V5_JS := node_modules/socket.io-client/dist/socket.io.min.js
NPM_STAMP   := node_modules/.sockettornad-io-installed
PYTEST_ARGS ?=

APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -q

.PHONY: setup lint test chatroom system-packages clean distclean _need-venv _need-npm

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
	@echo ">>> npm install (socket.io 0.6.18 and socket.io-client 4.x, for their browser clients)"
	@npm install --no-audit --no-fund --loglevel=error
	@test -f $(CLIENT_JS) || { echo "error: npm install did not produce $(CLIENT_JS)" >&2; exit 1; }
	@test -f $(CLIENT_V5_JS) || { echo "error: npm install did not produce $(CLIENT_V5_JS)" >&2; exit 1; }
	@touch $@

_need-npm:
	$(call need_pkg,npm,npm (Node.js package manager))

# Every system package the test suite uses, as <Debian package>:<file of it that the tests run>.
# The browser tests drive Debian's Chromium, Firefox ESR and WebKitGTK (WebKitWebDriver and the
# MiniBrowser it brings, on a virtual X display: xvfb, and xauth for xvfb-run by hand); never a
# downloaded browser build. The multi-process tests start their own redis-server and nginx on
# loopback ports (the packages' own services are not used).
TEST_PACKAGES := chromium:/usr/bin/chromium firefox-esr:/usr/bin/firefox-esr \
	webkit2gtk-driver:/usr/bin/WebKitWebDriver \
	webkit2gtk-driver:/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser \
	xvfb:/usr/bin/Xvfb xauth:/usr/bin/xauth redis-server:/usr/bin/redis-server nginx:/usr/sbin/nginx

# As root, installs the missing ones with one apt-get; otherwise names them (the tests that need
# them are then skipped, each with the package in its reason).
system-packages:
	@missing=""; \
	for entry in $(TEST_PACKAGES); do \
		package=$${entry%%:*}; file=$${entry#*:}; \
		if [ ! -x "$$file" ]; then case " $$missing " in *" $$package "*) ;; *) missing="$$missing $$package";; esac; fi; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo ">>> installing the Debian packages the tests need:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && $(APT_INSTALL)$$missing >/dev/null || \
			{ echo "error: apt-get could not install:$$missing" >&2; exit 1; }; \
	else \
		echo "warning: the test suite needs these Debian packages, which are missing:$$missing" >&2; \
		echo "warning: the tests that use them will be skipped. Install them with: sudo apt-get install$$missing" >&2; \
	fi

# Static checks: part of `make test`, so CI runs them too.
lint: setup
	$(VPY) -m ruff check tornad_io tests examples bench
	$(VPY) -m mypy --strict tornad_io

test: setup system-packages lint
	$(VPY) -m pytest $(PYTEST_ARGS)

chatroom: setup
	$(VPY) examples/chatroom/chatroom.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -not -path './node_modules/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules

# -- benchmark (bench/README.md) --------------------------------------------------------------------
# `make bench` installs what the benchmark needs beyond the test setup (python-socketio, py-spy, and
# the original node server, socket.io 0.6.18, into bench/node06/node_modules), then runs it (about 20
# minutes; results in bench/results/latest.json and the bench/README.md table).

BENCH_STAMP  := $(VENV)/.bench-requirements-installed
NODE06_DIR   := bench/node06
NODE06_STAMP := $(NODE06_DIR)/node_modules/.sockettornad-io-installed
BENCH_ARGS   ?=

.PHONY: bench bench-setup bench-smoke bench-profile bench-attacks

bench-setup: $(BENCH_STAMP) $(NODE06_STAMP)
	@:

$(BENCH_STAMP): bench/requirements.txt $(STAMP)
	@echo ">>> installing the benchmark's requirements (bench/requirements.txt) into $(VENV)"
	@$(VPY) -m pip install -q --disable-pip-version-check -r bench/requirements.txt
	@touch $@

# The node contestants (node06-ws, node06-xhr) run bench/servers/node06.js on this package, kept apart
# from the browser tests' node_modules; `npm ci` installs exactly bench/node06/package-lock.json.
$(NODE06_STAMP): $(NODE06_DIR)/package.json $(NODE06_DIR)/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory _need-npm
	@echo ">>> npm ci --prefix $(NODE06_DIR) (socket.io 0.6.18: the original node server, a benchmark contestant)"
	@npm ci --prefix $(NODE06_DIR) --no-audit --no-fund --loglevel=error
	@test -f $(NODE06_DIR)/node_modules/socket.io/package.json || \
		{ echo "error: npm did not install socket.io into $(NODE06_DIR)/node_modules" >&2; exit 1; }
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
