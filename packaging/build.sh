#!/bin/sh
# Build the distribution packages into dist/ (run by `make deb` / `make rpm`,
# which first install the build tools).
#
#   packaging/build.sh deb        dist/oci-multihome-hook_VERSION-REV_all.deb
#                                 (+ .changes and .buildinfo, for lintian)
#   packaging/build.sh rpm        dist/oci-multihome-hook-VERSION-1.noarch.rpm
#                                 (+ .src.rpm)
#   packaging/build.sh version    print the version
#
# Environment: PKG_MAINTAINER (the Maintainer and changelog signer of the deb,
# and the RPM's Packager, "Name <address>"), DEB_REVISION (default 1),
# SOURCE_DATE_EPOCH, DIST_DIR (default dist), RPM_PYTHON (below).
#
# The version comes from pyproject.toml ([project] version): it is stamped
# into debian/changelog at build time. The RPM spec states it (it builds as
# it is, with rpmbuild alone): both builds refuse a spec whose Version differs.
# Both work on a copy of the working tree (uncommitted changes included)
# without .git, virtualenvs, caches and build output, in a temporary
# directory that is removed afterwards.
#
# RPM_PYTHON (default /usr/bin/python3) is the Python the RPM is for: its
# site-packages, python(abi) and byte-code. On Debian, an RPM for a
# distribution with another Python (RHEL 9: 3.9) is built with that version's
# interpreter, e.g. pyenv's (it needs pip, not setuptools: see
# packaging/rpm/debian-fallback.macros). On an RPM distribution the RPM is
# for its own python3: build it on the release it is for.
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

version=$($PYTHON -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')

# The spec is not stamped, so it is kept in step by hand: fail loudly
# (before any build, deb included) rather than ship packages whose versions
# differ.
check_spec_version() {
    spec_version=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
    if [ "$spec_version" != "$version" ]; then
        echo "build.sh: $SPEC says Version: $spec_version, pyproject.toml says $version" >&2
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

# stage DIR: copy the source tree to DIR (created).
stage() {
    mkdir -p "$1"
    tar -C "$top" -cf - \
        --exclude=./.git --exclude='./.venv*' --exclude=./dist --exclude=./build \
        --exclude='*.egg-info' --exclude=__pycache__ --exclude=.mypy_cache \
        --exclude=.ruff_cache --exclude=.pytest_cache --exclude=./bench-results \
        --exclude=./debian . | tar -C "$1" -xf -
}

tmp=
cleanup() { if [ -n "$tmp" ]; then rm -rf "$tmp"; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM

build_deb() {
    tmp=$(mktemp -d)
    src=$tmp/$NAME-$version
    stage "$src"
    cp -a packaging/debian "$src/debian"
    mv "$src/debian/changelog.in" "$src/debian/changelog"
    DATE_FORMAT='%a, %d %b %Y %H:%M:%S +0000'
    for f in changelog control copyright; do stamp "$src/debian/$f"; done
    # The watch service's one source, the RPM's too, where dh_installsystemd
    # finds it (see debian/rules).
    cp packaging/$NAME-watch.service "$src/debian/$NAME.$NAME-watch.service"
    # The unit tests run at build time (debian/rules); DEB_BUILD_OPTIONS=nocheck
    # from the caller skips them.
    (cd "$src" && dpkg-buildpackage -us -uc -b)
    mkdir -p "$DIST_DIR"
    rm -f "$DIST_DIR"/${NAME}_*.deb "$DIST_DIR"/${NAME}_*.changes "$DIST_DIR"/${NAME}_*.buildinfo
    mv "$tmp"/${NAME}_*.deb "$tmp"/${NAME}_*.changes "$tmp"/${NAME}_*.buildinfo "$DIST_DIR"/
    ls -l "$DIST_DIR"/${NAME}_*
}

build_rpm() {
    tmp=$(mktemp -d)
    mkdir -p "$tmp/SOURCES" "$tmp/SPECS"
    stage "$tmp/stage/$NAME-$version"
    tar -C "$tmp/stage" --owner=0 --group=0 --numeric-owner \
        --mtime="@$SOURCE_DATE_EPOCH" --sort=name \
        -czf "$tmp/SOURCES/$NAME-$version.tar.gz" "$NAME-$version"
    cp "$SPEC" "$tmp/SPECS/$NAME.spec"
    # The Packager tag comes from the builder, as Fedora wants (never in the
    # spec): PKG_MAINTAINER unless ~/.rpmmacros or the caller sets %%packager.
    packager=$(rpm --eval '%{?packager}')
    set -- -ba --define "_topdir $tmp" --define "packager ${packager:-$PKG_MAINTAINER}"
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
        set -- "$@" --nodeps --define "__python3 $rpm_python" \
            --define '__brp_compress /bin/bash %{_rpmconfigdir}/brp-compress %{?_prefix}'
    elif [ "$rpm_python" != /usr/bin/python3 ]; then
        # An RPM distribution: its own macros, and rpmbuild checks (and
        # names) the missing build dependencies. The RPM is for its python3.
        echo "build.sh: RPM_PYTHON is for builds on Debian; build on the release the RPM is for" >&2
        exit 1
    fi
    rpmbuild "$@" "$tmp/SPECS/$NAME.spec"
    mkdir -p "$DIST_DIR"
    rm -f "$DIST_DIR"/$NAME-[0-9]*.rpm
    mv "$tmp"/RPMS/noarch/$NAME-*.rpm "$tmp"/SRPMS/$NAME-*.src.rpm "$DIST_DIR"/
    ls -l "$DIST_DIR"/$NAME-*.rpm
}

case "${1:-}" in
    deb) check_spec_version; build_deb ;;
    rpm) check_spec_version; build_rpm ;;
    version) echo "$version" ;;
    *) echo "usage: $0 deb|rpm|version" >&2; exit 2 ;;
esac
