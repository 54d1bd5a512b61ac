# Every target works on a fresh Debian 12 or 13 as root: missing system
# packages are installed on first use. What the host itself needs: podman
# runs in the labs' Debian roots (LAB_PACKAGES: mmdebstrap builds them),
# `make bench` too.
APT_PACKAGES := make iproute2 iptables util-linux procps python3-venv
LAB_PACKAGES := mmdebstrap

# $(call find-python,3.X): a Python 3.X interpreter, or nothing. pyenv's
# (`pyenv root`, else /root/.pyenv: pyenv may be installed but not on PATH),
# else python3.X on PATH.
PYENV_ROOT := $(or $(shell pyenv root 2>/dev/null),/root/.pyenv)
find-python = $(or $(lastword $(sort $(wildcard $(PYENV_ROOT)/versions/$(1)*/bin/python$(1) \
	/root/.pyenv/versions/$(1)*/bin/python$(1)))),$(shell command -v python$(1) 2>/dev/null))

# .venv: the newest pyroute2 and pydantic on the newest Python found, with
# the lint tools; its console script is the one the README sets up.
PYTHON ?= $(or $(firstword $(foreach v,3.14 3.13 3.12,$(call find-python,$(v)))),/usr/bin/python3)
PYTHON := $(PYTHON)
VENV := .venv
STAMP := $(VENV)/.installed

comma := ,

# The distributions' Python and libraries, each set in .venv-NAME.
SET_TESTS := tests/unit tests/netns tests/podman/test_podman.py
SETS := rhel9 ubuntu2204 debian12
rhel9_TITLE := RHEL 9 (EPEL)
rhel9_PYTHON_VERSION := 3.9
rhel9_PINS := pyroute2==0.5.14 pydantic==1.10.14
ubuntu2204_TITLE := Ubuntu 22.04
ubuntu2204_PYTHON_VERSION := 3.10
ubuntu2204_PINS := pyroute2==0.6.4 pydantic==1.8.2
debian12_TITLE := Debian 12
debian12_PYTHON_VERSION := 3.11
debian12_PINS := pyroute2==0.7.2 pydantic==1.10.4
rhel9_PYTHON := $(call find-python,3.9)
ubuntu2204_PYTHON := $(call find-python,3.10)
debian12_PYTHON := $(or $(wildcard /usr/bin/python3.11),$(call find-python,3.11))

# $(call missing-python,SET,WHAT): a recipe line for WHAT when SET's Python
# was not found: one line saying WHAT is skipped, or under CI=true a failure.
missing-python = msg="no Python $($(1)_PYTHON_VERSION) ($(PYENV_ROOT)/versions/$($(1)_PYTHON_VERSION)*, python$($(1)_PYTHON_VERSION) on PATH)"; \
	if [ "$$CI" = true ]; then echo "$(2): $$msg; CI=true: failing" >&2; exit 1; fi; \
	echo "skipping $(2): $$msg"

.PHONY: all system venv demo test test-venv test-host lint lint-py39 unit bench bench-churn clean shapes-doc \
	$(SETS:%=test-%) \
	roots test-labs
# The test runs share addresses and namespaces' names: one at a time, even under -j.
.NOTPARALLEL: test

all: test

# $(call apt-ensure,PACKAGES): apt-get install those not installed yet.
# Elsewhere (Fedora: `make rpm` there) it does nothing, and rpmbuild itself
# names the missing BuildRequires.
apt-ensure = if ! command -v apt-get >/dev/null; then \
		echo "no apt-get: not installing $(1)"; exit 0; fi; \
	missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get -o DPkg::Lock::Timeout=600 install -y -qq $$missing; \
	fi

system:
	@$(call apt-ensure,$(APT_PACKAGES) $(LAB_PACKAGES))

$(STAMP): pyproject.toml setup.cfg | system
	$(PYTHON) -m venv --clear $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,lint]'
	touch $@

# The podman 4 lab: what runs podman or changes a network namespace runs in
# a Debian 12 root (podman 4.3, netavark 1.4 and CNI, runc and crun 1.8) in
# namespaces of its own (testlab/rootlab.py): the host stays as it was. This
# checkout is seen there read-only, build/ writable, and the venv's
# interpreter bound in. $(call in-lab,STACK,VENV,VARIABLES,COMMAND) runs
# COMMAND there, in this directory; $(call pytest-in-lab,VENV,VARIABLES,ARGS)
# runs VENV's pytest in the podman 4 lab.
in-lab = $(VENV)/bin/python -m testlab.rootlab run --stack $(1) --venv $(CURDIR)/$(2) \
	--bind $(CURDIR) --writable $(CURDIR)/build -- \
	env CI="$$CI" PYTHONDONTWRITEBYTECODE=1 $(3) sh -c 'cd "$$0" && exec "$$@"' $(CURDIR) $(4)
pytest-in-lab = $(call in-lab,podman4,$(1),$(2),$(CURDIR)/$(1)/bin/pytest -p no:cacheprovider $(3))

# Each set: its venv (its Python, the project and pytest, its libraries
# pinned) and test-NAME, in the podman 4 lab, with that venv's console
# script as the hook under test: what depends on the libraries (the
# planner, netlink against real namespaces, diagnose's JSON) and a podman
# smoke test (test_podman.py: the bug, each mode, refusals). The full
# podman matrix runs once, in test-venv.
define set-rules
ifneq ($($(1)_PYTHON),)
.venv-$(1)/.installed: pyproject.toml setup.cfg | system
	$($(1)_PYTHON) -m venv --clear .venv-$(1)
	.venv-$(1)/bin/pip install -q --upgrade pip
	.venv-$(1)/bin/pip install -q -e '.[test]' $($(1)_PINS)
	touch $$@

test-$(1): venv .venv-$(1)/.installed roots
	@echo "== $($(1)_TITLE): $($(1)_PYTHON), $($(1)_PINS)"
	$$(call pytest-in-lab,.venv-$(1),MULTIHOME_HOOK_BIN=$(CURDIR)/.venv-$(1)/bin/oci-multihome-hook,\
		-v $(SET_TESTS))
else
test-$(1):
	@$$(call missing-python,$(1),the $($(1)_TITLE) set)
endif
endef
$(foreach set,$(SETS),$(eval $(call set-rules,$(set))))

venv: $(STAMP)

# mypy twice: for the Python it runs on with the newest libraries, and for
# Python 3.9 with the RHEL 9 set's (the newest pydantic and pytest need 3.10).
lint: venv lint-py39
	$(VENV)/bin/ruff check src tests testlab bench
	$(VENV)/bin/mypy

ifneq ($(rhel9_PYTHON),)
lint-py39: venv .venv-rhel9/.installed
	$(VENV)/bin/mypy --python-version 3.9 --python-executable .venv-rhel9/bin/python
else
lint-py39:
	@$(call missing-python,rhel9,mypy --python-version 3.9)
endif

unit: venv
	$(VENV)/bin/pytest -q tests/unit

# Everything, in parts that share nothing (testlab/parts.py runs two at a
# time, the longest first, and prints the time of each): lint; the tests
# that need neither podman nor namespaces, on the host; the whole suite
# with the newest libraries in the podman 4 lab; each distribution's set
# there; the podman 5 and 6 labs. What the parts need is made first, one
# at a time. The host is saved before and compared after: the last line
# says whether anything of it changed. A set whose Python is missing is
# skipped, except under CI=true.
TEST_PARTS := test-venv test-labs $(SETS:%=test-%) test-host lint
SET_VENVS = $(foreach set,$(SETS),$(if $($(set)_PYTHON),.venv-$(set)/.installed))
test: venv deb roots $(SET_VENVS)
	@$(VENV)/bin/python -m testlab.hoststate save build/host-before.json
	@status=0; $(VENV)/bin/python -m testlab.parts --jobs 2 $(TEST_PARTS) || status=1; \
	$(VENV)/bin/python -m testlab.hoststate check build/host-before.json || status=1; \
	exit $$status

# The tests that run nothing in a namespace: on the host.
HOST_TESTS := tests/unit tests/packages/test_release.py tests/packages/test_install_steps.py \
	tests/packages/test_setuptools.py
test-host: venv
	$(VENV)/bin/pytest -v $(HOST_TESTS)

# The rest with the newest libraries, in the podman 4 lab, under runc and
# crun (the `podman` fixture, tests/conftest.py), with netavark and CNI; the
# deb installed there by apt (tests/packages/test_deb.py).
LAB_TESTS := tests/netns tests/podman tests/packages/test_deb.py
test-venv: venv deb roots
	@echo "== newest: $(PYTHON), pyroute2 and pydantic from PyPI; runc and crun"
	$(call pytest-in-lab,$(VENV),MULTIHOME_RUNTIMES=runc$(comma)crun,-v --durations=20 $(LAB_TESTS))

# The root labs (testlab/roots.py, testlab/rootlab.py, tests/rootlab): each
# podman stack (podman4: Debian 12, for the suites above; podman5: Debian
# 13; podman6: Debian unstable + experimental; podman5-rhel and
# podman6-rhel: those on a RHEL-like host) in namespaces of its own, the
# deb installed there with apt. Each root is made once with mmdebstrap into
# /var/cache/oci-multihome-hook/SUITE-DIGEST-root (rebuilt when missing or
# incomplete; `python -m testlab.roots build --force` to renew them).
# STACKS=podman6 runs one stack alone. The whole suite runs on podman 5
# and 6, the network shapes' matrix on every stack (tests/rootlab/conftest.py).
STACKS ?=
roots: venv
	$(VENV)/bin/python -m testlab.roots build $(subst $(comma), ,$(STACKS))

# Six workers on two cores: a lab mostly waits (pings, time-outs).
test-labs: venv deb roots
	MULTIHOME_STACKS=$(STACKS) MULTIHOME_LAB_RESULTS=$(CURDIR)/build/shapes-labs.json \
		$(VENV)/bin/pytest -v --durations=20 -n 6 --dist loadgroup tests/rootlab

# docs/shapes.md from the tables the last test-labs measured.
shapes-doc: venv
	{ echo "# Network shapes: measured"; echo; \
	  echo "Written by \`make shapes-doc\` from the last \`make test\` (method:"; \
	  echo "[development.md](development.md#network-shapes)). % of pings lost, % of 8 TCP"; \
	  echo "connections failed, and what \`diagnose --json\` said of the container;"; \
	  echo "rows: stack, runtime, the host's filtering (strict unless named), mode."; \
	  echo; echo "## diagnose against the measurements"; echo; \
	  $(VENV)/bin/python -m testlab.shapes --agreement build/shapes-labs.json; \
	  $(VENV)/bin/python -m testlab.shapes build/shapes-labs.json; } > docs/shapes.md

# The demo in a root lab: podman 4.3 by default (the bug on two bridges),
# DEMO_STACK=podman6 for podman 6 (a published port beside a macvlan).
DEMO_STACK ?= podman4
demo: venv
	$(call in-lab,$(DEMO_STACK),$(VENV),,$(CURDIR)/$(VENV)/bin/python -m testlab.demo)

# Timings of podman run with and without the hook, in the podman 4 lab
# (with the hook alone: the newest set's and RHEL 9's, byte-compiled as a
# package install leaves them), then in the podman 5 and 6 labs (with the
# deb); writes bench/latest.json. The host's own podman is never used.
BENCH_HOOKS = newest=$(CURDIR)/$(VENV)/bin/oci-multihome-hook \
	$(if $(rhel9_PYTHON),rhel9=$(CURDIR)/.venv-rhel9/bin/oci-multihome-hook)
bench: venv deb roots $(SET_VENVS)
	$(foreach hook,$(BENCH_HOOKS),$(dir $(word 2,$(subst =, ,$(hook))))python -m compileall -q \
		src/multihome_hook &&) true
	$(VENV)/bin/python -m testlab.rootlab run --stack podman4 \
		$(foreach hook,$(BENCH_HOOKS),--venv $(dir $(word 2,$(subst =, ,$(hook))))..) \
		--bind $(CURDIR) --writable $(CURDIR)/build -- sh -c 'cd "$$0" && exec "$$@"' $(CURDIR) \
		$(CURDIR)/$(VENV)/bin/python -m bench.costs podman4 \
		$(foreach hook,$(BENCH_HOOKS),--hook $(hook)) --output $(CURDIR)/build/bench-podman4.json
	$(VENV)/bin/python -m bench.costs labs --podman4 build/bench-podman4.json

# `watch` under churn (bench/churn.py): CHURN_N container lifecycles in the
# podman 4 lab; CHURN_WATCH_SRC: another tree's src/ whose watch to measure
# (e.g. main's, for a before/after); CHURN_ARGS: more of its options
# (python -m bench.churn --help). Writes build/churn.json.
CHURN_N ?= 200
CHURN_WATCH_SRC ?= $(CURDIR)/src
CHURN_OUTPUT ?= build/churn.json
bench-churn: venv
	$(VENV)/bin/python -m testlab.rootlab run --stack podman4 --venv $(CURDIR)/$(VENV) \
		--bind $(CURDIR) --writable $(CURDIR)/build -- sh -c 'cd "$$0" && exec "$$@"' $(CURDIR) \
		$(CURDIR)/$(VENV)/bin/python -m bench.churn --lifecycles $(CHURN_N) \
		--watch-src $(CHURN_WATCH_SRC) --output $(CURDIR)/$(CHURN_OUTPUT) $(CHURN_ARGS)

clean:
	rm -rf $(VENV) $(SETS:%=.venv-%) build dist src/*.egg-info

# --- Distribution packages (packaging/) --------------------------------------
# Each built by packaging/build.sh from the sdist (this checkout's files that
# git does not ignore) into DIST_DIR; the version is setup.cfg's (the
# spec must say the same). `make lint-packages` builds the deb and the RPM
# and runs lintian and rpmlint on them; `make dist` makes the release.
#
# RPM_PYTHON: the Python the RPM is for (site-packages, python(abi),
# byte-code, dist tag), the system's by default. On Debian, another
# interpreter builds the RPM for a distribution with that Python (it needs
# pip, not setuptools), e.g. RHEL 9's 3.9:
#   make rpm RPM_PYTHON=$(pyenv root)/versions/3.9.18/bin/python3.9
# The RPM's %check runs tests/unit with the venv of the same Python X.Y.
RPM_PYTHON ?= /usr/bin/python3
# python3-pytest, -pyroute2, -pydantic: the unit tests at build time
# (debian/rules), on the distribution's libraries.
DEB_BUILD_DEPS := build-essential dpkg-dev debhelper dh-python python3-all \
	python3-setuptools pybuild-plugin-pyproject python3-pytest python3-pyroute2 \
	python3-pydantic
# Debian's rpm has rpmbuild; packaging/rpm/debian-fallback.macros (which
# build.sh loads there) use pip, setuptools and wheel.
# cpio: the package tests unpack an RPM (rpm2cpio | cpio).
RPM_BUILD_DEPS := rpm rpm2cpio cpio python3-pip python3-setuptools python3-wheel
# git: the sdist holds what git tracks; `make dist` wants a clean checkout.
DIST_DEPS := git
LINT_PACKAGES_DEPS := lintian rpmlint

.PHONY: deb rpm packages dist lint-packages deb-deps rpm-deps lint-packages-deps all-deps \
	print-packages

# Every package any target installs: installed, then listed on one line
# (tests/packages/test_install_steps.py checks that each command the suite
# and the targets run comes from one of them).
ALL_PACKAGES = $(APT_PACKAGES) $(LAB_PACKAGES) $(DEB_BUILD_DEPS) \
	$(RPM_BUILD_DEPS) $(LINT_PACKAGES_DEPS) $(DIST_DEPS) $(TMT_DEPS)
all-deps:
	@$(call apt-ensure,$(ALL_PACKAGES))

print-packages:
	@echo $(ALL_PACKAGES)

deb-deps:
	@$(call apt-ensure,$(DEB_BUILD_DEPS))

# On an RPM distribution (Fedora, RHEL and its rebuilds with EPEL and CRB:
# an rpm database that knows rpm itself), the build tools come from dnf: the
# spec's BuildRequires with `dnf builddep`, then those %generate_buildrequires
# adds (build.sh buildreqs writes them as a .nosrc.rpm, one round more
# when a round's tools add some). As root only: a packager without root
# runs the same dnf commands, or rpmbuild names what is missing.
RPM_HOST := $(shell rpm -q --quiet rpm 2>/dev/null && echo yes)
SPEC := packaging/rpm/oci-multihome-hook.spec
dnf-builddep = if [ "$$(id -u)" != 0 ]; then echo "not root: not installing the build tools"; \
		exit 0; fi; \
	dnf -q builddep --help >/dev/null 2>&1 || dnf install -y -q 'dnf-command(builddep)' \
		|| dnf install -y -q 'dnf5-command(builddep)' || exit 1; \
	dnf install -y -q git rpm-build python3-setuptools && dnf builddep -y -q $(SPEC) || exit 1; \
	for round in 1 2 3 4; do \
		srpm=$$(DIST_DIR=build/buildreqs packaging/build.sh buildreqs) && exit 0; \
		[ "$$round" != 4 ] && [ -n "$$srpm" ] && dnf builddep -y -q "$$srpm" || break; \
	done; echo "rpm-deps: build dependencies still missing (build/buildreqs)" >&2; exit 1

rpm-deps:
ifeq ($(RPM_HOST),yes)
	@$(call dnf-builddep)
else
	@$(call apt-ensure,$(RPM_BUILD_DEPS))
endif

lint-packages-deps:
	@$(call apt-ensure,$(LINT_PACKAGES_DEPS))

# The deb is a file target: the parts of `make test` that install it find
# it up to date instead of building it again side by side.
VERSION := $(shell sed -n 's/^version *= *//p' setup.cfg)
DEB_FILE := dist/oci-multihome-hook_$(VERSION)-1_all.deb
PACKAGE_SOURCES := $(shell find src hook oci-hooks.d packaging pyproject.toml setup.cfg -type f \
	-not -path '*/__pycache__/*' -not -path '*.egg-info/*')
deb: $(DEB_FILE)
$(DEB_FILE): $(PACKAGE_SOURCES) | deb-deps
	packaging/build.sh deb

RPM_CHECK_VENVS = $(CURDIR)/$(VENV) $(SETS:%=$(CURDIR)/.venv-%)
ifeq ($(RPM_HOST),yes)
# For this release's python3, with its own pytest and libraries: no venv.
rpm: rpm-deps
	packaging/build.sh rpm
else
rpm: rpm-deps venv $(SET_VENVS)
	RPM_PYTHON=$(RPM_PYTHON) RPM_CHECK_VENVS="$(RPM_CHECK_VENVS)" packaging/build.sh rpm
endif

packages: deb rpm

# The release, in DIST_DIR (dist/, emptied first): the sdist, the wheel, the
# deb and the Debian source package, the RPMs and SRPMs for RHEL 9 + EPEL
# (Python 3.9) and for the Fedora of the newest Python here, SHA256SUMS.
# Made from a commit: uncommitted changes are refused.
DIST_DIR ?= dist
dist: deb-deps rpm-deps venv $(SET_VENVS)
	@$(call apt-ensure,$(DIST_DEPS))
	@if [ -n "$$(git status --porcelain)" ] && [ "$(DIST_ALLOW_DIRTY)" != 1 ]; then \
		echo "make dist: uncommitted changes (git status): a release is made from a commit" >&2; \
		exit 1; fi
	@$(if $(rhel9_PYTHON),,$(call missing-python,rhel9,the RHEL 9 RPM); exit 1)
	rm -rf $(DIST_DIR)
	DIST_DIR=$(DIST_DIR) packaging/build.sh wheel
	DIST_DIR=$(DIST_DIR) packaging/build.sh deb
	$(foreach python,$(rhel9_PYTHON) $(PYTHON),DIST_DIR=$(DIST_DIR) RPM_PYTHON=$(python) \
		RPM_CHECK_VENVS="$(RPM_CHECK_VENVS)" packaging/build.sh rpm &&) true
	DIST_DIR=$(DIST_DIR) packaging/build.sh sums

# --- Packit and tmt (.packit.yaml, plans/, tests/tmt/) -----------------------
# tmt and packit from PyPI, in a venv of their own on the system Python
# (packitos builds gssapi, which wants libkrb5-dev, and loads the system's
# rpm bindings). Not in `make test`: they come from PyPI.
TMT_VENV := .venv-tmt
TMT_DEPS := libkrb5-dev python3-rpm rsync
.PHONY: lint-tmt tmt-local
$(TMT_VENV)/.installed: | system
	@$(call apt-ensure,$(TMT_DEPS))
	/usr/bin/python3 -m venv --clear $(TMT_VENV)
	$(TMT_VENV)/bin/pip install -q --upgrade pip
	$(TMT_VENV)/bin/pip install -q tmt packitos
	touch $@

# The plans and the Packit configuration as the services will read them;
# a tmt warning fails too (tmt lint itself fails on failures only).
lint-tmt: $(TMT_VENV)/.installed
	@out=$$($(TMT_VENV)/bin/tmt lint --outcome-only warn --outcome-only fail) || status=1; \
	echo "$$out"; if [ -n "$${status:-}" ] || echo "$$out" | grep -q '^\(warn\|fail\) '; then \
		echo "lint-tmt: tmt lint found the problems above" >&2; exit 1; fi; \
	echo "tmt lint: every test and plan passes"
	$(TMT_VENV)/bin/packit config validate

# The plans on this machine (tmt's local provisioning, as root), against the
# deb: installed for the run, purged after unless it was installed before.
# tmt's run directory may not be inside the checkout.
tmt-local: deb $(TMT_VENV)/.installed
	@had=$$(dpkg-query -W -f='$${Status}' oci-multihome-hook 2>/dev/null); \
	if [ "$$had" != "install ok installed" ]; then \
		apt-get -o DPkg::Lock::Timeout=600 install -y -qq ./$(DEB_FILE) || exit 1; fi; \
	status=0; TMT_WORKDIR_ROOT=/var/tmp/tmt-$(notdir $(CURDIR)) \
		$(TMT_VENV)/bin/tmt --feeling-safe run -a provision --how local || status=$$?; \
	if [ "$$had" != "install ok installed" ]; then \
		apt-get -o DPkg::Lock::Timeout=600 purge -y -qq oci-multihome-hook; fi; \
	exit $$status

# Fails on any lintian error or warning and any rpmlint error or warning; the
# accepted exceptions are in packaging/debian/*.lintian-overrides and
# packaging/rpm/oci-multihome-hook.rpmlintrc, each with its reason
# (packaging/rpm/rpmlint.toml stands in for a distribution's rpmlint config).
lint-packages: packages lint-packages-deps
	lintian --fail-on error,warning --info --pedantic dist/oci-multihome-hook_*.changes
	# One distribution at a time: rpmlint takes two SRPMs of one name for one.
	for srpm in dist/oci-multihome-hook-*.src.rpm; do \
		rpmlint -c packaging/rpm/rpmlint.toml -r packaging/rpm/oci-multihome-hook.rpmlintrc \
			packaging/rpm/oci-multihome-hook.spec $$srpm $${srpm%.src.rpm}.noarch.rpm \
			|| exit 1; done
