#!/bin/sh
# Build the release's artifacts into DIST_DIR (default dist/; run by `make
# sdist`, `make deb`, `make rpm`, `make dist`, which first install the build
# tools).
#
#   packaging/build.sh sdist      oci_multihome_hook-VERSION.tar.gz: the source
#                                 of everything else (tracked files only)
#   packaging/build.sh wheel      oci_multihome_hook-VERSION-py3-none-any.whl
#   packaging/build.sh deb        oci-multihome-hook_VERSION-REV_all.deb and
#                                 the Debian source package (.dsc, .orig.tar.gz,
#                                 .debian.tar.xz; + .changes, .buildinfo)
#   packaging/build.sh rpm        oci-multihome-hook-VERSION-1.DIST.noarch.rpm
#                                 and .src.rpm (DIST: below)
#   packaging/build.sh buildreqs  on an RPM distribution: the spec's build
#                                 dependencies, %generate_buildrequires's
#                                 included, as a .nosrc.rpm for `dnf builddep`
#                                 (its path on stdout; exit 11 while some are
#                                 missing, 0 once none are)
#   packaging/build.sh sums       SHA256SUMS of what DIST_DIR holds
#   packaging/build.sh version    print the version
#
# Environment: PKG_MAINTAINER (the Maintainer and changelog signer of the deb,
# and the RPM's Packager, "Name <address>"), DEB_REVISION (default 1),
# SOURCE_DATE_EPOCH, DIST_DIR (default dist), RPM_PYTHON, RPM_DIST,
# RPM_CHECK_VENVS, RPM_NOCHECK (below).
#
# The version comes from setup.cfg ([metadata] version): it is stamped into
# debian/changelog at build time. The RPM spec states it (it builds as it
# is, with rpmbuild alone): every build refuses a spec whose Version differs.
# The packages are built from the sdist, which holds the tracked files of the
# checkout as they are (uncommitted changes included: `make dist` refuses
# those); outside a git checkout (an unpacked sdist), every file but build
# output.
#
# RPM_PYTHON (default /usr/bin/python3) is the Python the RPM is for: its
# site-packages, python(abi) and byte-code. On Debian, an RPM for a
# distribution with another Python (RHEL 9: 3.9) is built with that version's
# interpreter, e.g. pyenv's (it needs pip, not setuptools: see
# packaging/rpm/debian-fallback.macros), and gets the dist tag of the
# distribution that has that Python (RPM_DIST overrides it); its %check runs
# tests/unit with a venv of the same Python X.Y that has pytest and the
# libraries, the first of RPM_CHECK_VENVS (the Makefile passes its venvs;
# RPM_NOCHECK=1 builds without). On an RPM distribution the RPM is for its
# own python3, with its own dist tag: build it on the release it is for.
set -eu

cd "$(dirname "$0")/.."
top=$(pwd)

# Before PATH is reset: RPM_PYTHON may be a name on the caller's PATH, or a
# pyenv shim, which needs pyenv on PATH. The interpreter's own path works
# without either.
RPM_PYTHON=${RPM_PYTHON:-/usr/bin/python3}
if ! rpm_python=$("$RPM_PYTHON" -c 'import sys; print(sys.executable)'); then
    echo "build.sh: RPM_PYTHON=$RPM_PYTHON: cannot run it" >&2
    exit 1
fi
xy='import sys; print("%d.%d" % sys.version_info[:2])'
rpm_python_version=$("$rpm_python" -c "$xy")

# The system's tools and Python only: no pyenv shims, no virtualenv from PATH.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
unset VIRTUAL_ENV PYTHONPATH PYTHONHOME || true

PYTHON=/usr/bin/python3
NAME=oci-multihome-hook
: "${PKG_MAINTAINER:=oci-multihome-hook maintainers <maintainers@users.noreply.r-seed-83837f20.example>}"
: "${DEB_REVISION:=1}"
: "${DIST_DIR:=dist}"
SPEC=packaging/rpm/$NAME.spec

# configparser, not tomllib: Python 3.9 (RHEL 9) has no tomllib.
version=$($PYTHON -c 'import configparser
c = configparser.ConfigParser(interpolation=None)
with open("setup.cfg") as f:
    c.read_file(f)
print(c["metadata"]["version"])')

# The spec is not stamped, so it is kept in step by hand: fail loudly
# (before any build, deb included) rather than ship packages whose versions
# differ.
check_spec_version() {
    spec_version=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
    if [ "$spec_version" != "$version" ]; then
        echo "build.sh: $SPEC says Version: $spec_version, setup.cfg says $version" >&2
        echo "build.sh: set the spec's Version to $version and add a %changelog entry" >&2
        exit 1
    fi
}

# Date of the changelog entries: the last commit's (reproducible builds of a
# commit), or now outside a git checkout. SOURCE_DATE_EPOCH wins if set.
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

# stamp FILE: replace the placeholders of a Debian packaging template, in place.
# DATE_FORMAT is date(1)'s format for @DATE@.
stamp() {
    date=$(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" "+$DATE_FORMAT")
    sed -i -e "s|@VERSION@|$version|g" -e "s|@DEBREV@|$DEB_REVISION|g" \
        -e "s|@DATE@|$date|g" -e "s|@MAINTAINER@|$PKG_MAINTAINER|g" "$1"
    if grep -n '@[A-Z]*@' "$1"; then
        echo "build.sh: placeholder left in $1" >&2
        exit 1
    fi
}

# stage DIR: the source tree as the sdist is to hold it, copied to DIR
# (created): in a git checkout the files git does not ignore, as they are
# now; elsewhere (an unpacked sdist) every file but build output.
stage() {
    mkdir -p "$1"
    if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$top" && git ls-files -z --cached --others --exclude-standard \
            | tar --null --ignore-failed-read -T - -cf -) | tar -C "$1" -xf -
    else
        tar -C "$top" -cf - \
            --exclude=./.git --exclude='./.venv*' --exclude=./dist --exclude=./build \
            --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache \
            --exclude=.ruff_cache --exclude=.pytest_cache --exclude=./bench-results \
            --exclude=./debian . | tar -C "$1" -xf -
    fi
}

# reproducible_tar DIR NAME OUT: NAME (in DIR) as a gzipped tarball OUT that
# depends on the files alone (owner, order, dates).
reproducible_tar() {
    tar -C "$1" --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        --sort=name -cf - "$2" | gzip -9n > "$3"
}

tmp=$(mktemp -d)
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The sdist under the name PEP 625 gives it, whatever the setuptools:
# before 69.3 (Debian 12's 66) it is oci-multihome-hook-VERSION.
SDIST_NAME=oci_multihome_hook-$version
SDIST=$DIST_DIR/$SDIST_NAME.tar.gz

build_sdist() {
    stage "$tmp/tree"
    (cd "$tmp/tree" && $PYTHON -c \
        'import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])' \
        "$tmp/sdist-out")
    mkdir "$tmp/sdist"
    tar -C "$tmp/sdist" -xzf "$tmp"/sdist-out/*.tar.gz
    if [ ! -d "$tmp/sdist/$SDIST_NAME" ]; then
        mv "$tmp"/sdist/* "$tmp/sdist/$SDIST_NAME"
    fi
    mkdir -p "$DIST_DIR"
    reproducible_tar "$tmp/sdist" "$SDIST_NAME" "$SDIST"
    ls -l "$SDIST"
}

# unpack_sdist DIR: the sdist's tree at DIR/$SDIST_NAME.
unpack_sdist() {
    mkdir -p "$1"
    tar -C "$1" -xzf "$SDIST"
}

build_wheel() {
    build_sdist
    unpack_sdist "$tmp/wheel"
    (cd "$tmp/wheel/$SDIST_NAME" && PIP_CONFIG_FILE=/dev/null $PYTHON -m pip wheel \
        --no-deps --no-build-isolation --no-index --no-cache-dir --disable-pip-version-check \
        --progress-bar off --wheel-dir "$tmp/wheel-out" .)
    rm -f "$DIST_DIR"/oci_multihome_hook-*.whl
    mv "$tmp"/wheel-out/*.whl "$DIST_DIR"/
    ls -l "$DIST_DIR"/oci_multihome_hook-*.whl
}

# The binary and the source package, from the sdist (the orig tarball).
build_deb() {
    build_sdist
    unpack_sdist "$tmp/deb"
    src=$tmp/deb/$NAME-$version
    mv "$tmp/deb/$SDIST_NAME" "$src"
    cp "$SDIST" "$tmp/deb/${NAME}_$version.orig.tar.gz"
    cp -a "$src/packaging/debian" "$src/debian"
    mv "$src/debian/changelog.in" "$src/debian/changelog"
    DATE_FORMAT='%a, %d %b %Y %H:%M:%S +0000'
    for f in changelog control copyright; do stamp "$src/debian/$f"; done
    # The watch service's one source, the RPM's too, where dh_installsystemd
    # finds it (see debian/rules).
    cp "$src/packaging/$NAME-watch.service" "$src/debian/$NAME.$NAME-watch.service"
    # The unit tests run at build time (debian/rules); DEB_BUILD_OPTIONS=nocheck
    # from the caller skips them.
    (cd "$src" && dpkg-buildpackage -us -uc)
    rm -f "$DIST_DIR"/${NAME}_*
    mv "$tmp"/deb/${NAME}_* "$DIST_DIR"/
    ls -l "$DIST_DIR"/${NAME}_*
}

# rpm_dist X.Y: the dist tag of the distribution whose python3 is X.Y, for
# an RPM built on Debian (on an RPM distribution, its own %dist).
rpm_dist() {
    case $1 in
        3.9) echo .el9 ;;    # RHEL 9 and its rebuilds, with EPEL
        3.10) echo .fc36 ;;
        3.11) echo .fc38 ;;
        3.12) echo .el10 ;;  # RHEL 10 (Fedora 39 and 40 too)
        3.13) echo .fc42 ;;  # Fedora 41 and 42
        3.14) echo .fc43 ;;  # Fedora 43 and 44
        *) echo "build.sh: no distribution known with Python $1: set RPM_DIST" >&2
           exit 1 ;;
    esac
}

# check_python: a Python X.Y (RPM_PYTHON's) with pytest and the libraries,
# for %check on Debian: the first such venv of RPM_CHECK_VENVS.
check_python() {
    for venv in ${RPM_CHECK_VENVS:-}; do
        if [ -x "$venv/bin/python" ] \
            && [ "$("$venv/bin/python" -c "$xy")" = "$rpm_python_version" ] \
            && "$venv/bin/python" -c 'import pytest, pyroute2, pydantic' 2>/dev/null; then
            echo "$venv/bin/python"
            return
        fi
    done
    echo "build.sh: no venv with Python $rpm_python_version, pytest, pyroute2 and pydantic" \
        "in RPM_CHECK_VENVS ($RPM_CHECK_VENVS) for %check (or RPM_NOCHECK=1)" >&2
    exit 1
}

# build_rpm [-ba|-br]: rpmbuild's build of everything (default), or of the
# build dependencies only (buildreqs, above).
build_rpm() {
    mode=${1:--ba}
    build_sdist >&2
    mkdir -p "$tmp/rpm/SOURCES" "$tmp/rpm/SPECS"
    cp "$SDIST" "$tmp/rpm/SOURCES/"
    cp "$SPEC" "$tmp/rpm/SPECS/$NAME.spec"
    # The Packager tag comes from the builder, as Fedora wants (never in the
    # spec): PKG_MAINTAINER unless ~/.rpmmacros or the caller sets %%packager.
    packager=$(rpm --eval '%{?packager}')
    set -- "$mode" --define "_topdir $tmp/rpm" --define "packager ${packager:-$PKG_MAINTAINER}"
    if [ "${RPM_NOCHECK:-}" = 1 ]; then
        set -- "$@" --without tests
    fi
    if ! rpm -q --quiet rpm 2>/dev/null; then
        # Debian: the rpm database is empty and would refuse every build
        # dependency (apt-get installed them), and Debian's rpm has no
        # Python, pyproject or systemd macros: the fallback stands in for
        # them (--load before --define: the later definition wins).
        # Debian's brp-compress (compresses man pages) says #!/bin/sh but
        # needs bash (read -d): run it with bash.
        if [ -z "$(rpm --eval '%{?pyproject_wheel:1}')" ]; then
            set -- --load packaging/rpm/debian-fallback.macros "$@"
        fi
        dist=${RPM_DIST:-$(rpm_dist "$rpm_python_version")} || exit 1
        set -- "$@" --nodeps --define "__python3 $rpm_python" --define "dist $dist" \
            --define '__brp_compress /bin/bash %{_rpmconfigdir}/brp-compress %{?_prefix}'
        if [ "${RPM_NOCHECK:-}" != 1 ]; then
            tests_python=$(check_python) || exit 1
            set -- "$@" --define "_fallback_check_python $tests_python"
        fi
    elif [ "$mode" = -br ]; then
        buildreqs "$@"
        return
    elif [ "$rpm_python" != /usr/bin/python3 ]; then
        # An RPM distribution: its own macros, and rpmbuild checks (and
        # names) the missing build dependencies. The RPM is for its python3.
        echo "build.sh: RPM_PYTHON is for builds on Debian; build on the release it is for" >&2
        exit 1
    else
        dist=$(rpm --eval '%{?dist}')
    fi
    rpmbuild "$@" "$tmp/rpm/SPECS/$NAME.spec"
    rm -f "$DIST_DIR/$NAME-$version"-*"$dist".noarch.rpm "$DIST_DIR/$NAME-$version"-*"$dist".src.rpm
    mv "$tmp"/rpm/RPMS/noarch/$NAME-*.rpm "$tmp"/rpm/SRPMS/$NAME-*.src.rpm "$DIST_DIR"/
    ls -l "$DIST_DIR"/$NAME-*"$dist".*.rpm
}

# buildreqs RPMBUILD-ARGS: rpmbuild -br (exit 11: build dependencies are
# missing), its .buildreqs.nosrc.rpm moved to DIST_DIR and named on stdout.
buildreqs() {
    status=0
    rpmbuild "$@" "$tmp/rpm/SPECS/$NAME.spec" >&2 || status=$?
    if [ "$status" != 0 ] && [ "$status" != 11 ]; then
        exit "$status"
    fi
    mkdir -p "$DIST_DIR"
    for nosrc in "$tmp"/rpm/SRPMS/*.buildreqs.nosrc.rpm; do
        if [ -f "$nosrc" ]; then
            mv "$nosrc" "$DIST_DIR"/
            echo "$DIST_DIR/${nosrc##*/}"
        fi
    done
    exit "$status"
}

# SHA256SUMS of every file in DIST_DIR, as `sha256sum -c SHA256SUMS` reads it.
sums() {
    (cd "$DIST_DIR" && find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%f\n' \
        | LC_ALL=C sort | xargs sha256sum > SHA256SUMS)
    cat "$DIST_DIR/SHA256SUMS"
}

case "${1:-}" in
    sdist) check_spec_version; build_sdist ;;
    wheel) check_spec_version; build_wheel ;;
    deb) check_spec_version; build_deb ;;
    rpm) check_spec_version; build_rpm ;;
    buildreqs)
        if ! rpm -q --quiet rpm 2>/dev/null; then
            echo "build.sh: buildreqs is for an RPM distribution (dnf builddep)" >&2
            exit 2
        fi
        check_spec_version; build_rpm -br ;;
    sums) sums ;;
    version) echo "$version" ;;
    *) echo "usage: $0 sdist|wheel|deb|rpm|buildreqs|sums|version" >&2; exit 2 ;;
esac
