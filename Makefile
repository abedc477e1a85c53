# roce.multirail: set-up, tests and lint. Run as root (network namespaces).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the tests need: ip, ping, NetworkManager (nmcli), dbus, netplan (systemd-networkd
# comes with systemd), shellcheck for sanity, and chromium to check the HTML audit report in a real browser.
DEB_PACKAGES := iproute2 iputils-ping network-manager dbus netplan.io shellcheck chromium
DEB_COMMANDS := ip ping nmcli dbus-daemon netplan shellcheck chromium

.PHONY: help venv bench-venv deps test lint sanity unit integration molecule demo bench clean

help:
	@echo "make demo   - show a broken multi-rail lab host, fix it with the role, prove each rail"
	@echo "make test   - everything: lint, sanity, unit, integration on the real kernel, molecule"
	@echo "make venv   - create $(VENV) from the pinned requirements.txt"
	@echo "make lint   - ansible-lint (production profile), ansible-test sanity, changelog lint"
	@echo "make bench  - this collection against community.general.nmcli and plain ip commands (QUICK=1: under 3 minutes)"

# The venv is rebuilt when requirements.txt changes. It also holds the checkout
# linked as ansible_collections/roce/multirail and a separate interpreter for
# ansible-test sanity, which installs its own pinned tools per test.
venv: $(VENV)/.stamp
$(VENV)/.stamp: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(PYTHON) -m venv $(VENV)/sanity
	$(VENV)/sanity/bin/pip install --quiet "$$(grep '^ansible-core==' requirements.txt)"
	mkdir -p $(VENV)/collections/ansible_collections/roce
	ln -sfn ../../../.. $(VENV)/collections/ansible_collections/roce/multirail
	touch $@

# Install the Debian packages only when one of their commands is missing.
deps:
	@missing=""; for c in $(DEB_COMMANDS); do command -v $$c >/dev/null || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
		echo "missing:$$missing - installing $(DEB_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_PACKAGES) >/dev/null; \
	fi

# ansible-lint reads this checkout (.venv/collections), never a copy another tool installed in ~/.ansible.
lint: venv deps
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/$(VENV)/collections $(BIN)/ansible-lint --offline
	$(BIN)/antsibull-changelog lint
	tests/sanity/run.sh

sanity: venv deps
	tests/sanity/run.sh

# Both cores: every test builds its own namespaces, named after its worker's pid.
unit: venv
	$(BIN)/python -m pytest -q -n 2 tests/unit

integration: venv bench-venv deps
	$(BIN)/python -m pytest -q -n 2 --dist worksteal --durations=15 tests/integration

# Collection-mode scenarios in extensions/molecule: namespace lab hosts,
# converge, idempotence, verify by behaviour.
molecule: venv deps
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/molecule test --all

test: venv bench-venv deps lint unit integration molecule

# A namespace lab host with four rails in the broken default state: the problem,
# the fix (playbooks/site.yml), the proof per rail, then the lab is removed.
demo: venv deps
	$(BIN)/python tests/lab/demo.py

# Side by side, in one run: site.yml, community.general.nmcli + ansible.posix.sysctl
# (from a separate virtualenv of the `ansible` package) and the plain ip commands,
# on namespace lab hosts with NetworkManager running; writes bench/results.json.
# The integration tests run one small round of it (tests/integration/test_bench.py).
BENCH_VENV := $(VENV)/bench
bench: venv bench-venv deps
	$(BENCH_VENV)/bin/python bench/run.py $(if $(QUICK),--quick)

bench-venv: $(BENCH_VENV)/.stamp

$(BENCH_VENV)/.stamp: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements.txt
	touch $@

clean:
	rm -rf $(VENV) tests/output .pytest_cache
