#!/usr/bin/env bash
# Run the whole test suite, stopping at the first stage that fails.
#
#   tools/test.sh              every stage, in this order:
#     vermin   plugins/modules and plugins/module_utils stay importable on Python 3.6+
#     sanity   ansible-test sanity --python 3.11
#     sanity-matrix  ansible-test sanity of ansible-core 2.16 and 2.21 on every host
#              Python they support (.cache/matrix, .cache/pythons); it runs in the
#              background while the stages before pytest run
#     units    ansible-test units --python 3.11
#     lint     ansible-lint (production profile, settings in .ansible-lint), antsibull-changelog lint,
#              antsibull-docs lint-collection-docs
#     pytest   tests/emulator and tests/e2e
#   tools/test.sh units pytest only the stages named
#
# ansible-test wants the collection at .../ansible_collections/imds/azure, so
# it runs on a fresh copy of the files git tracks or would track (not .venv,
# .cache or tests/output) in a temporary directory outside the checkout (inside
# it, ansible-test would ask git for the file list and find nothing, as .cache
# is ignored). The copy is removed afterwards unless a stage failed, so the
# reports in its tests/output/ can be read.
#
# Extra pytest options can be given in PYTEST_ADDOPTS, the number of pytest
# workers in PYTEST_WORKERS (default 2). The last line printed
# is pytest's summary; the exit status is non-zero when any stage failed,
# including a pytest run that collected no tests.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ALL_STAGES=(vermin sanity sanity-matrix units lint pytest)
ANSIBLE_TEST_PYTHON="3.11"
# Oldest Python the managed-host code must keep working on: ansible-core 2.16
# runs modules on Python 3.6 (RHEL 8's platform-python).
MANAGED_HOST_MIN_PYTHON="3.6"
COPY_ROOT=""
COLLECTION_COPY=""

STAGE_TIMES=()

say() { printf '==> %s\n' "$*"; }

fail() {
    printf '\n==> FAILED: %s\n' "$*" >&2
    if [[ -n "${COPY_ROOT}" ]]; then
        printf '==> ansible-test ran in %s (kept for its tests/output/)\n' "${COLLECTION_COPY}" >&2
        COPY_ROOT=""
    fi
    exit 1
}

remove_collection_copy() {
    if [[ -n "${COPY_ROOT}" ]]; then
        rm -rf "${COPY_ROOT}"
        COPY_ROOT=""
    fi
}

# kill_tree PID: stop a process and everything it started, children first.
kill_tree() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        kill_tree "${child}"
    done
    kill "$1" 2>/dev/null || true
}

on_exit() {
    remove_collection_copy
    # A stage failed while sanity-matrix still ran in the background.
    if [[ -n "${SANITY_MATRIX_PID:-}" ]]; then
        kill_tree "${SANITY_MATRIX_PID}"
        rm -f "${SANITY_MATRIX_LOG}"
    fi
}
trap on_exit EXIT

# run_stage NAME FUNCTION: time one stage and stop everything when it fails.
# (Bash ignores `set -e` inside a function called as `f || ...`, so stage
# functions return their failures explicitly.)
run_stage() {
    local name="$1" started=${SECONDS} rc=0
    say "[${name}] starting"
    "$2" || rc=$?
    local elapsed=$((SECONDS - started))
    STAGE_TIMES+=("${name} ${elapsed}s")
    if [[ ${rc} -ne 0 ]]; then
        fail "stage '${name}' failed (exit ${rc}) after ${elapsed}s; stage times: $(stage_times)"
    fi
    say "[${name}] passed in ${elapsed}s"
}

stage_times() {
    local joined
    joined="$(printf '%s, ' "${STAGE_TIMES[@]}")"
    printf '%s' "${joined%, }"
}

# --- vermin ----------------------------------------------------------------

vermin_check() {
    # Same checks for the self-check and the real run, so a self-check that
    # passes says something about the real one.
    local rc=0
    vermin --no-config-file --no-tips --violations --pessimistic --eval-annotations \
        -t="${MANAGED_HOST_MIN_PYTHON}-" "$@" || rc=$?
    builtin_member_check "$@" || rc=$?
    return "${rc}"
}

# vermin only knows that `x.isascii()` needs Python 3.7 when x is a literal:
# it does not infer types. Flag every attribute whose name is, in vermin's own
# rules, a member that builtin types (str, bytes, int, ...) gained after the
# target, unless some builtin type had a member of that name already.
builtin_member_check() {
    python - "${MANAGED_HOST_MIN_PYTHON}" "$@" <<'PY'
import ast
import builtins
import os
import sys

from vermin import Config
from vermin.rules import MOD_MEM_REQS

target = tuple(int(part) for part in sys.argv[1].split("."))
requirements = MOD_MEM_REQS(Config())
types = [value for value in vars(builtins).values() if isinstance(value, type) and not issubclass(value, BaseException)]
newer = {}
for name, (_, py3) in requirements.items():
    owner, _, member = name.partition(".")
    if owner in vars(builtins) and "." not in member and py3 and py3 > target:
        newer.setdefault(member, []).append(name)
# A member another builtin type had all along (float.is_integer) proves nothing.
for member in list(newer):
    for kind in types:
        known = requirements.get(kind.__name__ + "." + member)
        if hasattr(kind, member) and (known is None or not known[1] or known[1] <= target):
            del newer[member]
            break

paths = []
for argument in sys.argv[2:]:
    if os.path.isdir(argument):
        paths += sorted(os.path.join(root, name) for root, _, names in os.walk(argument) for name in names if name.endswith(".py"))
    else:
        paths.append(argument)
found = 0
for path in paths:
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in newer:
            found += 1
            needs = ", ".join("%s needs %s" % (name, ".".join(map(str, requirements[name][1]))) for name in newer[node.attr])
            print("%s:%d: .%s: %s, the target is %s" % (path, node.lineno, node.attr, needs, sys.argv[1]))
sys.exit(1 if found else 0)
PY
}

# Prove that the vermin invocation rejects code newer than the target and
# accepts code that is fine on it, so a green result cannot come from a
# check that flags nothing.
vermin_self_check() {
    local canaries rc=0
    canaries="$(mktemp -d)"
    vermin_check_canaries "${canaries}" || rc=$?
    rm -rf "${canaries}"
    return "${rc}"
}

vermin_check_canaries() {
    local canaries="$1"
    # Each too_new_*.py uses one feature that Python ${MANAGED_HOST_MIN_PYTHON} (RHEL 8's
    # platform-python) lacks; vermin must reject every one of them.
    cat >"${canaries}/too_new_str_isascii.py" <<'PY'
def ascii_only(text):
    return text.isascii()
PY
    cat >"${canaries}/too_new_dataclasses.py" <<'PY'
from dataclasses import dataclass
@dataclass
class Frontend:
    address: str
PY
    cat >"${canaries}/too_new_future_annotations.py" <<'PY'
from __future__ import annotations
def port(value: int) -> int:
    return value
PY
    cat >"${canaries}/too_new_assignment_expression.py" <<'PY'
import json
def first_key(text):
    if (data := json.loads(text)):
        return sorted(data)[0]
    return None
PY
    cat >"${canaries}/too_new_subprocess_capture_output.py" <<'PY'
import subprocess
subprocess.run(["true"], capture_output=True, text=True)
PY
    cat >"${canaries}/too_new_builtin_generic_annotations.py" <<'PY'
def count(names: list[str]) -> dict[str, int]:
    return {name: len(name) for name in names}
PY
    cat >"${canaries}/too_new_str_removeprefix.py" <<'PY'
print("imds.azure".removeprefix("imds."))
PY
    cat >"${canaries}/too_new_match_statement.py" <<'PY'
def describe(value):
    match value:
        case 0:
            return "zero"
    return "other"
PY
    # f-strings and variable annotations arrived in Python 3.6, so this one must pass.
    cat >"${canaries}/fine_on_target.py" <<'PY'
import json
LIMIT: int = 3
def first_key(text):
    data = json.loads(text)
    return f"{sorted(data)[0]}" if data else None
PY

    local canary
    for canary in "${canaries}"/too_new_*.py; do
        if vermin_check "${canary}" >/dev/null 2>&1; then
            echo "vermin self-check: $(basename "${canary}") needs a Python newer than ${MANAGED_HOST_MIN_PYTHON} but vermin passed it" >&2
            return 1
        fi
    done
    if ! vermin_check "${canaries}/fine_on_target.py" >/dev/null 2>&1; then
        echo "vermin self-check: fine_on_target.py runs on Python ${MANAGED_HOST_MIN_PYTHON} but vermin rejected it:" >&2
        vermin_check "${canaries}/fine_on_target.py" >&2 || true
        return 1
    fi
}

stage_vermin() {
    vermin_self_check || return 1
    local paths=(plugins/modules plugins/module_utils) files
    files="$(find "${paths[@]}" -name '*.py' 2>/dev/null | wc -l)"
    if [[ "${files}" -eq 0 ]]; then
        echo "no Python files under ${paths[*]}: nothing for vermin to check" >&2
        return 1
    fi
    echo "vermin: ${files} files must run on Python ${MANAGED_HOST_MIN_PYTHON}+"
    vermin_check "${paths[@]}"
}

# --- ansible-test ------------------------------------------------------------

make_collection_copy() {
    remove_collection_copy
    COPY_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/imds-azure-test.XXXXXX")" || return 1
    COLLECTION_COPY="${COPY_ROOT}/ansible_collections/imds/azure"
    copy_collection_files "${COLLECTION_COPY}"
}

# copy_collection_files DEST: the files to test, into DEST.
copy_collection_files() {
    local destination="$1"
    mkdir -p "${destination}" || return 1
    if git -C "${REPO_ROOT}" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # Tracked files plus new files that are not ignored; a tracked file
        # deleted in the work tree is left out, and so is .ansible/, the
        # cache ansible-lint keeps in the project directory.
        git -C "${REPO_ROOT}" ls-files -z --cached --others --exclude-standard \
            | (cd "${REPO_ROOT}" && while IFS= read -r -d '' path; do
                   [[ "${path}" == .ansible/* ]] && continue
                   [[ -e "${path}" || -L "${path}" ]] && printf '%s\0' "${path}"
               done) \
            | tar -C "${REPO_ROOT}" --null --files-from=- -cf - \
            | tar -C "${destination}" -xf -
    else
        tar -C "${REPO_ROOT}" --exclude=./.venv --exclude=./.cache --exclude=./.git --exclude=./.ansible \
            --exclude=./tests/output --exclude='__pycache__' -cf - . \
            | tar -C "${destination}" -xf -
    fi
}

stage_sanity() {
    make_collection_copy || return 1
    (cd "${COLLECTION_COPY}" && ansible-test sanity --python "${ANSIBLE_TEST_PYTHON}" --color no) || return 1
    remove_collection_copy
}

# sanity-matrix: the ansible-test of the oldest and the newest supported
# ansible-core, each from its version-matrix environment (tools/setup.sh
# builds them in .cache/matrix). Without --python, the tests that depend on
# the Python version (compile, import) run on every managed-host Python that
# release supports and that .cache/pythons links to: with 2.16, Python 3.6
# and 3.7. Much of a first run goes into creating ansible-test's virtual
# environments, so the stage starts in the background right after setup, on
# a copy of its own, and the other stages run meanwhile; its output is shown
# when it is waited for, before pytest.
SANITY_MATRIX_RELEASES=(2.16 2.21)
SANITY_MATRIX_PID=""
SANITY_MATRIX_LOG=""

start_sanity_matrix() {
    SANITY_MATRIX_LOG="$(mktemp "${TMPDIR:-/tmp}/imds-azure-sanity-matrix.XXXXXX")" || return 1
    sanity_matrix_job >"${SANITY_MATRIX_LOG}" 2>&1 &
    SANITY_MATRIX_PID=$!
    say "[sanity-matrix] started in the background (ansible-core ${SANITY_MATRIX_RELEASES[*]})"
}

sanity_matrix_job() {
    local root copy release venv
    root="$(mktemp -d "${TMPDIR:-/tmp}/imds-azure-test.XXXXXX")" || return 1
    copy="${root}/ansible_collections/imds/azure"
    copy_collection_files "${copy}" || return 1
    for release in "${SANITY_MATRIX_RELEASES[@]}"; do
        venv="${REPO_ROOT}/.cache/matrix/ansible-core-${release}"
        if [[ ! -x "${venv}/bin/ansible-test" ]]; then
            echo "${venv}/bin/ansible-test is missing: tools/setup.sh --matrix builds it from tests/matrix/requirements-${release}.txt" >&2
            return 1
        fi
        say "[sanity-matrix] $("${venv}/bin/ansible-test" --version)"
        if ! (cd "${copy}" && PATH="${venv}/bin:${REPO_ROOT}/.cache/pythons:${PATH}" ansible-test sanity --color no); then
            echo "==> ansible-test ${release} ran in ${copy} (kept for its tests/output/)" >&2
            return 1
        fi
    done
    rm -rf "${root}"
}

stage_sanity-matrix() {
    local rc=0
    wait "${SANITY_MATRIX_PID}" || rc=$?
    SANITY_MATRIX_PID=""
    cat "${SANITY_MATRIX_LOG}"
    rm -f "${SANITY_MATRIX_LOG}"
    return "${rc}"
}

stage_units() {
    make_collection_copy || return 1
    if [[ -z "$(find "${COLLECTION_COPY}/tests/unit" -name 'test_*.py' 2>/dev/null)" ]]; then
        echo "no unit tests (tests/unit/**/test_*.py) found" >&2
        return 1
    fi
    # --requirements installs what ansible-test's pytest setup needs
    # (pytest-mock, mock) and tests/unit/requirements.txt into .venv.
    (cd "${COLLECTION_COPY}" && ansible-test units --python "${ANSIBLE_TEST_PYTHON}" --color no --requirements) || return 1
    remove_collection_copy
}

# --- ansible-lint --------------------------------------------------------------

stage_lint() {
    # --offline: no requirements.yml installs, schema downloads, or copy of
    # the collection into .ansible/. Playbooks that use imds.azure.* still
    # need the collection to resolve for ansible-lint's syntax check, so it
    # is offered as a link to this checkout.
    local collections rc=0
    collections="$(mktemp -d)"
    mkdir -p "${collections}/ansible_collections/imds"
    ln -s "${REPO_ROOT}" "${collections}/ansible_collections/imds/azure" || return 1
    ANSIBLE_COLLECTIONS_PATH="${collections}" ansible-lint --offline --nocolor || rc=$?
    collection_docs_lint "${collections}" || rc=$?
    rm -rf "${collections}"
    # Changelog fragments: valid sections and text, so that a release can be cut from them.
    antsibull-changelog lint || rc=$?
    return "${rc}"
}

# The plugin and role documentation as the Ansible documentation site would
# build it. Only this collection and ansible.builtin are visible (no scan of
# the collections inside the ansible package: that takes minutes), so
# references to other collections are not checked.
collection_docs_lint() {
    local collections="$1"
    (cd "${collections}/ansible_collections/imds/azure" \
        && ANSIBLE_COLLECTIONS_PATH="${collections}" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
           antsibull-docs lint-collection-docs --plugin-docs --check-extra-docs-refs .)
}

# --- pytest ------------------------------------------------------------------

run_pytest() {
    local rc=0
    say "[pytest] starting; earlier stages: $(stage_times)"
    # Two workers, each taking whole test files (their module fixtures stay
    # shared): most tests wait on subprocesses, so this halves the stage. The
    # twenty slowest tests are listed, to see where the time goes.
    python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadfile --durations=20 tests/emulator tests/e2e || rc=$?
    if [[ ${rc} -eq 5 ]]; then
        fail "pytest collected no tests"
    fi
    exit "${rc}"
}

main() {
    local stages=("$@") stage known
    [[ ${#stages[@]} -eq 0 ]] && stages=("${ALL_STAGES[@]}")
    for stage in "${stages[@]}"; do
        known=""
        for known in "${ALL_STAGES[@]}"; do [[ "${stage}" == "${known}" ]] && break; known=""; done
        [[ -n "${known}" ]] || fail "unknown stage '${stage}'; stages: ${ALL_STAGES[*]}"
    done

    cd "${REPO_ROOT}"
    run_stage setup setup_environment

    for stage in "${stages[@]}"; do
        [[ "${stage}" == sanity-matrix ]] && start_sanity_matrix
    done
    for stage in "${stages[@]}"; do
        [[ "${stage}" == pytest || "${stage}" == sanity-matrix ]] && continue
        run_stage "${stage}" "stage_${stage}"
    done
    # Joined last: it ran while the stages above did.
    for stage in "${stages[@]}"; do
        [[ "${stage}" == sanity-matrix ]] && run_stage sanity-matrix stage_sanity-matrix
    done
    # pytest goes last so that its summary is the last line printed.
    for stage in "${stages[@]}"; do
        [[ "${stage}" == pytest ]] && run_pytest
    done
    say "all stages passed: $(stage_times)"
}

setup_environment() {
    bash "${REPO_ROOT}/tools/setup.sh" --matrix || return 1
    # Everything below uses the tools pinned in .venv.
    export VIRTUAL_ENV="${REPO_ROOT}/.venv"
    export PATH="${VIRTUAL_ENV}/bin:${PATH}"
    export PYTHONDONTWRITEBYTECODE=1
}

main "$@"
