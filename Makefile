# Every target works on a fresh Debian 12 as root: missing system packages
# are installed on first use.
PYTHON ?= /usr/bin/python3
VENV := .venv
OLDEST := .venv-oldest
APT_PACKAGES := podman runc netavark aardvark-dns iptables busybox-static iputils-ping \
	iproute2 util-linux python3-venv
STAMP := $(VENV)/.installed

.PHONY: all system venv demo test lint unit clean

all: test

system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml | system
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	# The oldest supported libraries (Debian 12's), for the same tests.
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/pip install -q --upgrade pip
	$(OLDEST)/bin/pip install -q -e '.[test]' 'pyroute2==0.7.2'
	touch $@

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check src tests testlab
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest -q tests/unit

# Lint, then the whole suite with the newest libraries, then again with the
# oldest ones (the hook under test is that venv's console script).
test: lint
	$(VENV)/bin/pytest -v
	MULTIHOME_HOOK_BIN=$(CURDIR)/$(OLDEST)/bin/oci-multihome-hook $(OLDEST)/bin/pytest -v

demo: venv
	$(VENV)/bin/python -m testlab.demo

clean:
	rm -rf $(VENV) $(OLDEST) build dist src/*.egg-info
