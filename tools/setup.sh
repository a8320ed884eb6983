#!/usr/bin/env bash
# Prepare this checkout for development, tests and the demo.
#
#   - Debian packages the tests use (nginx, redis-server, iproute2, git, ...),
#     installed with apt-get only when one is missing; services are never
#     started here, tests start their own instances.
#   - Java 17+ for ansible-rulebook (Debian's OpenJDK 17 when no Java 17+ is
#     on PATH).
#   - .venv: a virtual environment with the pinned tools of
#     requirements-dev.txt and tests/unit/requirements.txt, reinstalled only
#     when those files (or the Python version) change.
#   - ansible-test's pip bootstrap script, replaced by an offline stand-in
#     (tests/utils/pip_bootstrap.py, see the comment there).
#   - with --matrix (tools/test.sh passes it): .cache/matrix/ansible-core-X.Y,
#     one virtual environment per ansible-core release of the version matrix,
#     from tests/matrix/requirements-X.Y.txt with the controller Python that
#     file names, each rebuilt only when its file (or its Python) changes, with
#     the pip bootstrap for its ansible-test; and .cache/pythons, links to the
#     managed-host Pythons found.
#
# Safe to run again: when everything is in place it finishes in about a second.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${REPO_ROOT}/.venv"
PYTHON="${PYTHON:-python3}"
# ansible-core 2.19 needs at least this Python on the controller.
MIN_PYTHON="3.11"
# How long the first pip install takes: 83 s measured on an idle 2-core
# machine with an empty pip cache, 3.5 minutes on a busy one.
FIRST_PIP_RUN="about 1.5 minutes (up to 4 on a busy 2-core machine)"

DEBIAN_PACKAGES=(
    ca-certificates # HTTPS to the package index
    git             # tools/test.sh lists the files to test with git
    iproute2        # `ip netns`, for tests that need a private network
    nginx           # the nginx_frontends role renders and checks configs
    libnginx-mod-stream  # nginx stream module, for UDP and plain TCP listeners
    openssl         # test CAs and certificates for the HTTPS tests and the demo
    curl            # HTTP/2 requests in the nginx HTTPS tests
    python3-venv    # ensurepip for Debian's python3
    redis-server    # tests that need a throw-away redis
    shellcheck      # ansible-test sanity checks shell scripts with it
)

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

install_debian_packages() {
    local missing=() package
    for package in "${DEBIAN_PACKAGES[@]}"; do
        if [[ "$(dpkg-query -W -f='${Status}' "${package}" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("${package}")
        fi
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0

    command -v apt-get >/dev/null 2>&1 || die "missing packages (${missing[*]}) and no apt-get to install them"
    log "installing Debian packages: ${missing[*]}"

    # Package scripts would start nginx and redis as system services; tests run
    # their own instances on ports they choose, so keep the services down. A
    # policy-rc.d answering 101 ("action not allowed") does that; it is only
    # added for this install when the machine has none.
    local policy=/usr/sbin/policy-rc.d added_policy=""
    if [[ ! -e "${policy}" ]]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > ${policy} && chmod 755 ${policy}"
        added_policy=1
    fi

    local rc=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || rc=$?
    if [[ ${rc} -eq 0 ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
    fi
    [[ -n "${added_policy}" ]] && as_root rm -f "${policy}"
    [[ ${rc} -eq 0 ]] || die "apt-get failed (exit ${rc}) installing: ${missing[*]}"
}

python_is_recent_enough() {
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= tuple(map(int, '${MIN_PYTHON}'.split('.'))) else 1)" 2>/dev/null
}

create_venv() {
    if [[ -x "${VENV}/bin/python" ]] && python_is_recent_enough "${VENV}/bin/python"; then
        return 0
    fi
    command -v "${PYTHON}" >/dev/null 2>&1 || die "${PYTHON} not found; install Python ${MIN_PYTHON}+"
    python_is_recent_enough "${PYTHON}" || die "$("${PYTHON}" -V 2>&1) is too old; Python ${MIN_PYTHON}+ is needed"
    log "creating ${VENV} with $("${PYTHON}" -V 2>&1)"
    rm -rf "${VENV}"
    "${PYTHON}" -m venv "${VENV}"
}

# Condense pip's output (read on stdin) to what shows progress: a dot per
# package collected, then one line when the installation starts.
show_pip_progress() {
    local line collected=0
    printf '[setup]   collecting ' >&2
    while IFS= read -r line; do
        case "${line}" in
            "Collecting "* | "Requirement already satisfied: "*)
                collected=$((collected + 1))
                printf '.' >&2
                ;;
            "Installing collected packages: "*)
                printf ' %d packages\n' "${collected}" >&2
                log "  installing them (the longest step)"
                ;;
        esac
    done
}

install_python_requirements() {
    local requirement_files=("${REPO_ROOT}/requirements-dev.txt")
    [[ -f "${REPO_ROOT}/tests/unit/requirements.txt" ]] && requirement_files+=("${REPO_ROOT}/tests/unit/requirements.txt")

    local stamp="${VENV}/.requirements.sha256" wanted
    wanted="$( { "${VENV}/bin/python" -VV; cat "${requirement_files[@]}"; } | sha256sum | cut -d' ' -f1)"
    if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" ]]; then
        return 0
    fi

    local pip_args=() file started=${SECONDS} rc=0
    for file in "${requirement_files[@]}"; do pip_args+=(-r "${file}"); done
    # The whole of pip's output goes to a log; the terminal gets the progress.
    local pip_log="${VENV}/pip-install.log"
    log "installing Python requirements into .venv (pip's output: ${pip_log})"
    log "  a first run takes ${FIRST_PIP_RUN}; later runs skip this step"
    "${VENV}/bin/python" -m pip install --disable-pip-version-check --progress-bar off "${pip_args[@]}" 2>&1 \
        | tee "${pip_log}" | show_pip_progress || rc=$?
    if [[ ${rc} -ne 0 ]]; then
        printf '\n' >&2
        tail -n 40 "${pip_log}" >&2
        die "pip install failed for: ${requirement_files[*]} (full log: ${pip_log})"
    fi
    log "  Python requirements installed in $((SECONDS - started))s"
    printf '%s\n' "${wanted}" >"${stamp}"
}

install_pip_bootstrap_for_ansible_test() {
    # $1: the Python of the environment whose ansible-test is prepared (default .venv's).
    # ansible-test runs ~/.ansible/test/cache/get_pip_<version>.py to put pip
    # into the virtual environments it creates, and downloads that file when it
    # is absent. Ask ansible-test which pip versions it wants rather than
    # assuming one, then put our offline script at each of those paths.
    local python="${1:-${VENV}/bin/python}"
    local versions version target source="${REPO_ROOT}/tests/utils/pip_bootstrap.py"
    versions="$("${python}" - <<'PY'
import types

from ansible_test._internal.python_requirements import get_venv_packages
from ansible_test._util.target.common.constants import CONTROLLER_PYTHON_VERSIONS, REMOTE_ONLY_PYTHON_VERSIONS

wanted = set()
for version in CONTROLLER_PYTHON_VERSIONS + REMOTE_ONLY_PYTHON_VERSIONS:
    wanted.add(get_venv_packages(types.SimpleNamespace(version=version))['pip'])
print('\n'.join(sorted(wanted)))
PY
)" || die "could not ask ansible-test which pip version it bootstraps"
    [[ -n "${versions}" ]] || die "ansible-test named no pip version to bootstrap"

    for version in ${versions}; do
        target="${HOME}/.ansible/test/cache/get_pip_${version//./_}.py"
        if ! cmp -s "${source}" "${target}" 2>/dev/null; then
            log "installing offline pip bootstrap for ansible-test (pip ${version}): ${target}"
            mkdir -p "$(dirname "${target}")"
            cp "${source}" "${target}"
        fi
    done
}

# The benchmarks import the test support package (tests/support) and the
# emulator (tools/) as pytest does through pytest.ini's pythonpath: a .pth file
# puts the same two directories on the path of the environment's Python.
link_test_support() {
    local site
    site="$("${VENV}/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    printf '%s\n' "${REPO_ROOT}/tests" "${REPO_ROOT}/tools" >"${site}/imds_azure_test_support.pth"
}

# --- version matrix ----------------------------------------------------------
# Kept apart from the functions above so that changes to either merge cleanly.

MATRIX_DIR="${REPO_ROOT}/tests/matrix"
MATRIX_VENVS="${REPO_ROOT}/.cache/matrix"

# find_python X.Y: pythonX.Y from the system directories or pyenv's versions
# (never pyenv's shims, which may point elsewhere); the same search as
# tests/support/ansible_env.py.
find_python() {
    local version="$1" name="python$1" candidate pyenv_pythons
    local pyenv_root="${PYENV_ROOT:-${HOME}/.pyenv}"
    # Newest patch release first.
    pyenv_pythons="$(printf '%s\n' "${pyenv_root}"/versions/"${version}".*/bin/"${name}" | sort -rV)"
    for candidate in "/usr/bin/${name}" "/usr/local/bin/${name}" ${pyenv_pythons}; do
        if [[ -x "${candidate}" ]] && [[ "$("${candidate}" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == "${version}" ]]; then
            printf '%s\n' "${candidate}"
            return 0
        fi
    done
    return 1
}

# build_matrix_venv FILE: the environment of one tests/matrix/requirements-X.Y.txt.
build_matrix_venv() {
    local requirements="$1" minor python interpreter venv stamp wanted
    minor="$(basename "${requirements}" .txt)"
    minor="${minor#requirements-}"
    python="$(sed -n 's/^# controller-python: *\([0-9.]*\).*/\1/p' "${requirements}")"
    [[ -n "${python}" ]] || { log "${requirements}: no '# controller-python: X.Y' line"; return 1; }
    interpreter="$(find_python "${python}")" || { log "Python ${python} (for ansible-core ${minor}) not found"; return 1; }
    venv="${MATRIX_VENVS}/ansible-core-${minor}"
    stamp="${venv}/.requirements.sha256"
    wanted="$( { "${interpreter}" -VV; cat "${requirements}"; } | sha256sum | cut -d' ' -f1)"
    if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${wanted}" && -x "${venv}/bin/ansible-playbook" ]]; then
        return 0
    fi
    log "creating ${venv#"${REPO_ROOT}"/} (ansible-core ${minor}, $("${interpreter}" -V 2>&1))"
    rm -rf "${venv}"
    "${interpreter}" -m venv "${venv}" || return 1
    if ! "${venv}/bin/python" -m pip install --disable-pip-version-check -r "${requirements}" >"${venv}/pip-install.log" 2>&1; then
        tail -n 40 "${venv}/pip-install.log" >&2
        log "pip install failed for ${requirements} (full log: ${venv}/pip-install.log)"
        return 1
    fi
    printf '%s\n' "${wanted}" >"${stamp}"
}

install_matrix_venvs() {
    local requirements pids=() failed=0 pid
    mkdir -p "${MATRIX_VENVS}"
    # In parallel: most of the time goes into downloads and unpacking.
    for requirements in "${MATRIX_DIR}"/requirements-*.txt; do
        [[ -f "${requirements}" ]] || continue
        build_matrix_venv "${requirements}" &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do
        wait "${pid}" || failed=1
    done
    [[ ${failed} -eq 0 ]] || die "could not build every version-matrix environment (see above)"
    local venv
    for venv in "${MATRIX_VENVS}"/ansible-core-*/; do
        install_pip_bootstrap_for_ansible_test "${venv}bin/python"
    done
}

# .cache/pythons/pythonX.Y: links to each managed-host Python found, for tools
# that look for pythonX.Y on PATH (ansible-test sanity's compile and import
# tests), where pyenv's shims would refuse to run.
HOST_PYTHON_VERSIONS=(3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13)

link_host_pythons() {
    local links="${REPO_ROOT}/.cache/pythons" version interpreter
    mkdir -p "${links}"
    for version in "${HOST_PYTHON_VERSIONS[@]}"; do
        if interpreter="$(find_python "${version}")"; then
            ln -sfn "${interpreter}" "${links}/python${version}"
        else
            rm -f "${links}/python${version}"
        fi
    done
}

# --- Java for ansible-rulebook -------------------------------------------------
# ansible-rulebook (requirements-dev.txt) runs its rule engine in a JVM and
# refuses a Java older than 17. A Java 17 or newer on PATH is used as it is;
# otherwise Debian's OpenJDK 17 is installed.
JAVA_PACKAGE="openjdk-17-jdk-headless"
MIN_JAVA_MAJOR=17

java_major_version() {
    # `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' on stderr.
    command -v java >/dev/null 2>&1 || return 1
    java -version 2>&1 | sed -n 's/^[^"]* version "\([0-9]*\).*/\1/p' | head -n 1
}

install_java() {
    local major
    major="$(java_major_version || true)"
    if [[ -n "${major}" && "${major}" -ge "${MIN_JAVA_MAJOR}" ]]; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "ansible-rulebook needs Java ${MIN_JAVA_MAJOR}+ and there is no apt-get to install ${JAVA_PACKAGE}"
    log "installing ${JAVA_PACKAGE} (ansible-rulebook needs Java ${MIN_JAVA_MAJOR}+; found: ${major:-none})"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${JAVA_PACKAGE}" >/dev/null \
        || die "apt-get failed installing ${JAVA_PACKAGE}"
    major="$(java_major_version || true)"
    [[ -n "${major}" && "${major}" -ge "${MIN_JAVA_MAJOR}" ]] || die "java on PATH is still not ${MIN_JAVA_MAJOR}+ after installing ${JAVA_PACKAGE}"
}

main() {
    install_debian_packages
    install_java
    create_venv
    install_python_requirements
    install_pip_bootstrap_for_ansible_test
    link_test_support
    if [[ "${1:-}" == --matrix ]]; then
        install_matrix_venvs
        link_host_pythons
    fi
}

main "$@"
