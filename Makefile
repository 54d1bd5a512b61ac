# Every target works on a fresh Debian 12 as root: missing system packages
# are installed on first use.
PYTHON ?= /usr/bin/python3
VENV := .venv
OLDEST := .venv-oldest
APT_PACKAGES := podman runc netavark aardvark-dns iptables busybox-static iputils-ping \
	iproute2 util-linux python3-venv time
STAMP := $(VENV)/.installed

.PHONY: all system venv demo test lint unit bench clean

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
	$(OLDEST)/bin/pip install -q -e '.[test]' 'pyroute2==0.7.2' 'pydantic==1.10.4'
	touch $@

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check src tests testlab
	$(VENV)/bin/mypy

unit: venv
	$(VENV)/bin/pytest -q tests/unit

# Lint, then the whole suite with the newest libraries, then again with the
# oldest ones (the hook under test is that venv's console script). The
# package tests run once: the installed package uses the system's libraries.
test: lint
	$(VENV)/bin/pytest -v
	MULTIHOME_HOOK_BIN=$(CURDIR)/$(OLDEST)/bin/oci-multihome-hook \
		$(OLDEST)/bin/pytest -v --ignore=tests/packages

demo: venv
	$(VENV)/bin/python -m testlab.demo

# Timings of podman run with and without the hook; writes bench/latest.json.
bench: venv
	$(VENV)/bin/python -m testlab.bench

clean:
	rm -rf $(VENV) $(OLDEST) build dist src/*.egg-info

# --- Distribution packages (packaging/) --------------------------------------
# `make deb` / `make rpm` build into dist/ from a copy of the working tree; the
# version is pyproject.toml's (the spec must say the same). `make
# lint-packages` builds both and runs lintian and rpmlint on them.
#
# RPM_PYTHON: the Python the RPM is for (site-packages, python(abi),
# byte-code), the system's by default. On Debian, another interpreter builds
# the RPM for a distribution with that Python (it needs pip, not setuptools),
# e.g. RHEL 9's 3.9:
#   make rpm RPM_PYTHON=$(pyenv root)/versions/3.9.18/bin/python3.9
RPM_PYTHON ?= /usr/bin/python3
DEB_BUILD_DEPS := build-essential dpkg-dev debhelper dh-python python3-all \
	python3-setuptools pybuild-plugin-pyproject
# Debian's rpm has rpmbuild; packaging/rpm/debian-fallback.macros (which
# build.sh loads there) use pip, setuptools and wheel.
RPM_BUILD_DEPS := rpm python3-pip python3-setuptools python3-wheel
LINT_PACKAGES_DEPS := lintian rpmlint

# $(call apt-ensure,PACKAGES): apt-get install those not installed yet (as
# `system`). Elsewhere (Fedora: `make rpm` there) it does nothing, and
# rpmbuild itself names the missing BuildRequires.
apt-ensure = if ! command -v apt-get >/dev/null; then \
		echo "no apt-get: not installing $(1)"; exit 0; fi; \
	missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

.PHONY: deb rpm packages lint-packages deb-deps rpm-deps lint-packages-deps

deb-deps:
	@$(call apt-ensure,$(DEB_BUILD_DEPS))

rpm-deps:
	@$(call apt-ensure,$(RPM_BUILD_DEPS))

lint-packages-deps:
	@$(call apt-ensure,$(LINT_PACKAGES_DEPS))

deb: deb-deps
	packaging/build.sh deb

rpm: rpm-deps
	RPM_PYTHON=$(RPM_PYTHON) packaging/build.sh rpm

packages: deb rpm

# Fails on any lintian error or warning and any rpmlint error or warning; the
# accepted exceptions are in packaging/debian/*.lintian-overrides and
# packaging/rpm/oci-multihome-hook.rpmlintrc, each with its reason
# (packaging/rpm/rpmlint.toml stands in for a distribution's rpmlint config).
lint-packages: packages lint-packages-deps
	lintian --fail-on error,warning --info --pedantic dist/oci-multihome-hook_*.changes
	rpmlint -c packaging/rpm/rpmlint.toml -r packaging/rpm/oci-multihome-hook.rpmlintrc \
		packaging/rpm/oci-multihome-hook.spec dist/oci-multihome-hook-*.rpm
