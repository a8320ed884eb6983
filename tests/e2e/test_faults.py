# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The modules under IMDS faults, end to end: each inventory host is its own
# emulated VM whose IMDS misbehaves in one way. All hosts run in one
# ansible-playbook run (forks = hosts, strategy free), so the slow cases
# (410 for 20 s, timeouts) overlap and the suite stays fast.
#
# For every case: success within the retry budget or a clean failure with a
# clear message, the time within the bound docs/reliability.md states, no
# traceback, no partial facts, and a jsonfile fact cache filled by an earlier
# good run that stays byte for byte the same. A second test does the same with
# the nginx_frontends role and checks the rendered configuration is untouched.

import json
import re
from dataclasses import dataclass, field

import pytest

from support.ansible_env import MANAGED_HOST_PYTHON
from support.faults import (
    INFO_TASK,
    LOADBALANCER_TASK,
    MODULES_PLAYBOOK,
    POISON_FRONTEND,
    REPORT_TASK,
    ROLE_GATHER_TASK,
    ROLE_PLAYBOOK,
    ROLE_WRITE_TASK,
    RefusingPort,
    SilentListener,
    TrapServer,
    bundled_scenario,
    module_seconds,
    once,
    first_role_run,
    private_vm,
    role_host_vars,
    role_task_names,
    snapshot,
    timed_interpreters,
    traceback_lines,
    with_faults,
)
from support.paths import LOADBALANCER_PATH

# The client's constants (plugins/module_utils/_imds.py); the bounds below are
# stated in terms of them, as docs/reliability.md does.
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
MIN_REQUEST_INTERVAL = 0.2
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRY_TIMEOUT = 70.0
# How much later than the client sent it the emulator may log a request's arrival.
ARRIVAL_JITTER = 0.05

# The bound a case states is held by the module's own clock: imds_seconds,
# which the module reports, may exceed it only by this much (the last read's
# bookkeeping, a sleep that wakes late on a busy machine).
IMDS_SECONDS_SLACK = 1.0
# The module process as a whole (support.faults.timed_interpreters) also
# starts Python and unpacks the module, with every host of the run starting
# at once on a small machine: generous, it only catches a run that does far
# more than its read, such as a retry loop past its budget.
PROCESS_SLACK = 30.0

# A byte every 2 ms takes about 1.5 s for the documented answer, several times that when
# every sleep wakes late on a busy machine: the timeout leaves room for both.
DRIP_TIMEOUT = 15.0
FAST_TIMEOUT = 2.0          # one request, for the cases that must time out
RECOVERY_RETRY_TIMEOUT = 15.0  # enough for every recovering case below to succeed
GIVE_UP_RETRY_TIMEOUT = 3.0    # short, for the cases that never recover


def backoff_total(failures):
    """The most the client sleeps in total before the attempt that follows `failures` failed ones."""
    return sum(min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt) for attempt in range(failures))


@dataclass
class FaultCase:
    name: str
    faults: list = field(default_factory=list)   # emulator faults; empty for the special listeners
    listener: str = "emulator"                     # emulator | refused | silent
    module: str = "loadbalancer_facts"             # loadbalancer_facts | metadata_info
    timeout: float = None                          # None: the module default
    retry_timeout: float = RECOVERY_RETRY_TIMEOUT  # None: the module default
    error_code: str = None                         # None: the read must succeed
    message: tuple = ()                            # regexes the failure message must match
    requests: object = None                        # exact statuses the emulator must log, or a callable check
    bound: float = 0.0                             # seconds the collection promises (docs/reliability.md)
    bound_text: str = ""

    @property
    def fails(self):
        return self.error_code is not None


def _statuses(*parts):
    return [status for count, status in parts for repeat in range(count)]


def _all_with_status(status, at_least):
    def check(statuses):
        return len(statuses) >= at_least and set(statuses) == {status}
    check.description = "at least %d requests, all answered %s" % (at_least, status)
    return check


CASES = [
    # --- transient faults that clear: success inside the retry budget ---------------
    FaultCase(
        "gone-20s", [{"path": LOADBALANCER_PATH, "status": 410, "seconds": 20}],
        timeout=None, retry_timeout=None,
        requests=lambda statuses: statuses[-1] == 200 and set(statuses[:-1]) == {410} and len(statuses) >= 5,
        bound=20 + BACKOFF_CAP + DEFAULT_TIMEOUT,
        bound_text="20 s of 410 + one backoff step (cap %.0f s) + timeout; default retry_timeout (%.0f s)" % (
            BACKOFF_CAP, DEFAULT_RETRY_TIMEOUT)),
    FaultCase(
        "throttled-burst", [{"status": 429, "count": 3}],
        requests=_statuses((3, 429), (1, 200)),
        bound=backoff_total(3) + 4 * 0.5, bound_text="backoff for 3 failures (%.1f s) + 4 requests" % backoff_total(3)),
    FaultCase(
        "throttled-2.5s", [{"status": 429, "seconds": 2.5}],
        requests=lambda statuses: statuses[-1] == 200 and set(statuses[:-1]) == {429},
        bound=2.5 + 4.0 + 1.0, bound_text="2.5 s of 429 + the backoff step in progress (at most 4 s by then)"),
    FaultCase(
        "server-errors", [{"status": 500, "count": 2}, {"status": 503, "count": 2}],
        requests=_statuses((2, 500), (2, 503), (1, 200)),
        bound=backoff_total(4) + 5 * 0.5, bound_text="backoff for 4 failures (%.1f s) + 5 requests" % backoff_total(4)),
    FaultCase(
        "lb-404-transient",
        [{"status": 404, "lb_error": "not_available", "count": 2}, {"status": 404, "lb_error": "enabling", "count": 1}],
        requests=_statuses((3, 404), (1, 200)),
        bound=backoff_total(3) + 4 * 0.5, bound_text="backoff for 3 failures (%.1f s) + 4 requests" % backoff_total(3)),
    FaultCase(
        "reset-twice", [{"reset": True, "count": 2}],
        requests=_statuses((2, 0), (1, 200)),
        bound=backoff_total(2) + 3 * 0.5, bound_text="backoff for 2 failures (%.1f s) + 3 requests" % backoff_total(2)),
    FaultCase(
        "drip-in-time", [{"drip": 0.002}],
        timeout=DRIP_TIMEOUT, requests=[200],
        bound=DRIP_TIMEOUT, bound_text="timeout (the slow body arrives inside it)"),
    FaultCase(
        "info-server-errors", [{"path": "/metadata/instance", "status": 503, "count": 2}],
        module="metadata_info", requests=_statuses((2, 503), (1, 200)),
        bound=backoff_total(2) + 3 * 0.5, bound_text="backoff for 2 failures (%.1f s) + 3 requests" % backoff_total(2)),

    # --- faults that do not clear: a clean failure ----------------------------------------
    FaultCase(
        "refused", listener="refused", error_code="unreachable",
        message=(r"Cannot connect to IMDS at http://127\.0\.0\.1:\d+", r"refused", r"endpoint"),
        bound=FAST_TIMEOUT, bound_text="at once: not retried"),
    FaultCase(
        "silent-listener", listener="silent", timeout=FAST_TIMEOUT, error_code="timeout",
        message=(r"did not answer /metadata/loadbalancer within 2\.0 s", r"timeout"),
        bound=FAST_TIMEOUT, bound_text="timeout: not retried"),
    FaultCase(
        "hang", [{"hang": True}], timeout=FAST_TIMEOUT, error_code="timeout",
        message=(r"did not answer /metadata/loadbalancer within 2\.0 s", r"timeout"), requests=[0],
        bound=FAST_TIMEOUT, bound_text="timeout: not retried"),
    FaultCase(
        "drip-too-slow", [{"drip": 0.05}], timeout=FAST_TIMEOUT, error_code="timeout",
        message=(r"did not answer /metadata/loadbalancer within 2\.0 s", r"timeout"), requests=[200],
        bound=FAST_TIMEOUT, bound_text="timeout, counted to the last byte: not retried"),
    FaultCase(
        "truncated", [{"truncate": 40}], error_code="truncated",
        message=(r"closed the connection before the whole answer", r"truncated"), requests=[200],
        bound=FAST_TIMEOUT, bound_text="at once: not retried"),
    FaultCase(
        "html-200", [{"non_json": True}], error_code="invalid_json",
        message=(r"not valid JSON", r"Access denied"), requests=[200],
        bound=FAST_TIMEOUT, bound_text="at once: not retried"),
    FaultCase(
        "oversize", [{"oversize": 2 * 1024 * 1024}], error_code="too_large",
        message=(r"larger than the 1048576 byte limit", r"refusing"), requests=[200],
        bound=FAST_TIMEOUT, bound_text="at once: the declared length is refused before reading"),
    FaultCase(
        "redirect", [], error_code="redirect",  # faults filled in with the trap's URL
        message=(r"redirect \(HTTP 302\)", r"never followed", r"endpoint"), requests=[302],
        bound=FAST_TIMEOUT, bound_text="at once: not followed, not retried"),
    FaultCase(
        "content-type", [{"content_type": "text/html; charset=utf-8"}], error_code="bad_content_type",
        message=(r"content type 'text/html; charset=utf-8', expected application/json",), requests=[200],
        bound=FAST_TIMEOUT, bound_text="at once: not retried"),
    FaultCase(
        "unavailable-forever", [{"status": 503}], retry_timeout=GIVE_UP_RETRY_TIMEOUT, error_code="unavailable",
        message=(r"HTTP 503", r"Gave up after \d+ attempt\(s\) over [\d.]+ s \(retry_timeout is 3 s\)"),
        requests=_all_with_status(503, 2),
        bound=GIVE_UP_RETRY_TIMEOUT + DEFAULT_TIMEOUT, bound_text="retry_timeout + timeout"),
    FaultCase(
        "reset-forever", [{"reset": True}], retry_timeout=GIVE_UP_RETRY_TIMEOUT, error_code="connection_reset",
        message=(r"closed the connection for /metadata/loadbalancer before answering", r"Gave up after \d+ attempt"),
        requests=_all_with_status(0, 2),
        bound=GIVE_UP_RETRY_TIMEOUT + DEFAULT_TIMEOUT, bound_text="retry_timeout + timeout"),
    FaultCase(
        "info-html-200", [{"path": "/metadata/instance", "non_json": True}], module="metadata_info",
        error_code="invalid_json", message=(r"/metadata/instance/compute", r"not valid JSON"), requests=[200],
        bound=FAST_TIMEOUT, bound_text="at once: not retried"),
]
CASES_BY_NAME = {case.name: case for case in CASES}


def _host_vars(case, endpoint):
    host = {"ansible_connection": "local", "imds_endpoint": endpoint, "imds_module": case.module}
    if case.timeout is not None:
        host["imds_timeout"] = case.timeout
    if case.retry_timeout is not None:
        host["imds_retry_timeout"] = case.retry_timeout
    return host


def _inventory(hosts):
    return {"all": {"hosts": hosts}}


def _fresh(name):
    return name + "-fresh"


@dataclass
class MatrixRun:
    """Everything the fault matrix tests look at, collected while the emulators still run."""
    baseline: object
    faulted: object
    documented: dict
    baseline_facts: dict
    requests: dict            # host -> emulator request log of the faulted run
    durations: dict           # host -> seconds of each module process it ran
    cache_before: dict
    cache_after: dict
    trap_requests: list
    trap_connections: int


def _run_matrix(emulator_fleet, run_playbook, tmp_path_factory, python):
    documented = bundled_scenario("documented")
    timing_dir = tmp_path_factory.mktemp("module-times")
    cache_dir = tmp_path_factory.mktemp("fact-cache")
    cache_env = {
        "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache_dir),
        "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0",
    }
    failing = [case for case in CASES if case.fails]
    # Every case host, and a twin of each failing one that never had cached facts.
    fleet = emulator_fleet(dict([(case.name, documented) for case in CASES]
                                + [(_fresh(case.name), documented) for case in failing]))

    # 1. A good run fills the fact cache of every case host.
    baseline = run_playbook(
        MODULES_PLAYBOOK, inventory=_inventory({case.name: _host_vars(case, fleet.endpoints[case.name]) for case in CASES}),
        env=cache_env, extra_args=("--forks", str(len(CASES))))
    baseline.assert_ok()
    assert not traceback_lines(baseline), baseline.describe()
    baseline_facts = {}
    for case in CASES:
        if case.module == "loadbalancer_facts":
            baseline_facts[case.name] = baseline.task(LOADBALANCER_TASK, case.name)["ansible_facts"]["azure_loadbalancer"]
    cache_before = snapshot(cache_dir)

    # 2. Every host's IMDS starts misbehaving, and the same play runs again.
    with TrapServer() as trap, RefusingPort() as refused, SilentListener() as silent:
        special = {"refused": refused.endpoint, "silent": silent.endpoint}
        faults_of = {case.name: case.faults for case in CASES}
        faults_of["redirect"] = [{"redirect": trap.url + "/metadata/loadbalancer?api-version=2020-10-01"}]
        hosts = {}
        for case in CASES:
            names = [case.name] + ([_fresh(case.name)] if case.fails else [])
            for name in names:
                if case.listener == "emulator":
                    fleet[name].set_scenario(with_faults(documented, *faults_of[case.name]))
                    endpoint = fleet.endpoints[name]
                else:
                    fleet[name].reset()
                    endpoint = special[case.listener]
                hosts[name] = _host_vars(case, endpoint)
        for name, interpreter in timed_interpreters(timing_dir, hosts, python).items():
            hosts[name]["ansible_python_interpreter"] = interpreter
        faulted = run_playbook(MODULES_PLAYBOOK, inventory=_inventory(hosts), env=cache_env,
                               extra_args=("--forks", str(len(hosts))))
        requests = {name: fleet[name].requests() for name in hosts}
        trap_requests, trap_connections = list(trap.requests), trap.connections

    durations = {name: module_seconds(timing_dir, name) for name in hosts}
    run = MatrixRun(baseline=baseline, faulted=faulted, documented=documented, baseline_facts=baseline_facts,
                    requests=requests, durations=durations, cache_before=cache_before, cache_after=snapshot(cache_dir),
                    trap_requests=trap_requests, trap_connections=trap_connections)
    _print_figures(run)
    return run


def _print_figures(run):
    print("\nfault matrix: seconds each host's module process took (bound = what docs/reliability.md states);"
          " span = first to last request the emulator logged")
    for case in CASES:
        requests = run.requests[case.name]
        statuses = [entry["status"] for entry in requests]
        span = (requests[-1]["time"] - requests[0]["time"]) if requests else 0.0
        outcome = "ok" if not case.fails else case.error_code
        print("  %-20s %-17s module %6.2f s  bound %5.1f s  span %5.2f s  requests %s" % (
            case.name, outcome, sum(run.durations[case.name]), case.bound, span, statuses))


def _result(run, host):
    case = CASES_BY_NAME[host.replace("-fresh", "")]
    task = LOADBALANCER_TASK if case.module == "loadbalancer_facts" else INFO_TASK
    return run.faulted.task(task, host)


@pytest.fixture
def matrix(emulator_fleet, run_playbook, tmp_path_factory, collection_install):
    """The fault matrix run, done once for all the tests that look at it."""
    python = MANAGED_HOST_PYTHON
    return once("fault matrix", lambda: _run_matrix(emulator_fleet, run_playbook, tmp_path_factory, python))


def test_baseline_run_gathered_the_documented_load_balancer(matrix):
    served = matrix.documented["loadbalancer"]["loadbalancer"]
    frontends = {entry["frontendIpAddress"] for section in served.values() for entry in section}
    for host, facts in matrix.baseline_facts.items():
        assert facts["available"] is True, host
        assert set(facts["frontend_ips"]) == frontends, host


@pytest.mark.parametrize("case", [case for case in CASES if not case.fails], ids=lambda case: case.name)
def test_transient_fault_recovers_inside_the_retry_budget(matrix, case):
    result = _result(matrix, case.name)
    assert not result.get("failed"), "%s: %s" % (case.name, result.get("msg"))
    if case.module == "loadbalancer_facts":
        facts = result["ansible_facts"]["azure_loadbalancer"]
        assert facts == matrix.baseline_facts[case.name]
    else:
        assert result["metadata"] == matrix.documented["instance"]["compute"]
    _check_requests(matrix, case)
    _check_bound(matrix, case)


@pytest.mark.parametrize("case", [case for case in CASES if case.fails], ids=lambda case: case.name)
def test_lasting_fault_fails_cleanly(matrix, case):
    for host in (case.name, _fresh(case.name)):
        result = _result(matrix, host)
        assert result.get("failed") is True, "%s succeeded under %s: %s" % (host, case.name, result)
        assert result.get("error_code") == case.error_code, result
        message = result.get("msg", "")
        for pattern in case.message:
            assert re.search(pattern, message), "%s: %r does not match %r" % (host, message, pattern)
        assert "Traceback" not in json.dumps(result) and "module_stderr" not in result, result
        assert "ansible_facts" not in result and "metadata" not in result, "a failed read returned data: %s" % result
    _check_requests(matrix, case)
    _check_bound(matrix, case)


@pytest.mark.parametrize("case", [case for case in CASES if case.module == "loadbalancer_facts"],
                         ids=lambda case: case.name)
def test_facts_after_the_read_are_the_old_ones_or_absent(matrix, case):
    # A host that had facts keeps exactly those (from the cache, or the same
    # ones read again); a host that never had any still has none.
    assert matrix.faulted.task(REPORT_TASK, case.name)["msg"] == matrix.baseline_facts[case.name]
    if case.fails:
        assert matrix.faulted.task(REPORT_TASK, _fresh(case.name))["msg"] == "absent"


def test_fact_cache_is_byte_for_byte_unchanged(matrix):
    assert matrix.cache_before, "the good run cached no facts"
    assert sorted(matrix.cache_after) == sorted(matrix.cache_before)
    changed = [name for name in matrix.cache_before if matrix.cache_after[name][0] != matrix.cache_before[name][0]]
    assert changed == []
    # Hosts whose read failed did not even rewrite their cache file.
    for case in CASES:
        if case.fails and case.module == "loadbalancer_facts":
            cached = [name for name in matrix.cache_before if re.match(r"^(?:s\d+_)?%s$" % re.escape(case.name), name)]
            assert len(cached) == 1, (case.name, sorted(matrix.cache_before))
            assert matrix.cache_after[cached[0]][1] == matrix.cache_before[cached[0]][1], cached[0]


def test_no_traceback_anywhere_in_the_fault_run(matrix):
    assert traceback_lines(matrix.faulted) == []
    assert "Traceback" not in matrix.faulted.stderr


def test_redirect_target_receives_nothing(matrix):
    assert matrix.trap_connections == 0
    assert matrix.trap_requests == []
    for host in ("redirect", _fresh("redirect")):
        assert POISON_FRONTEND not in json.dumps(_result(matrix, host))


def test_every_request_carried_the_metadata_header_and_nothing_forwarded(matrix):
    for host, requests in matrix.requests.items():
        for entry in requests:
            headers = {name.lower(): value for name, value in entry["headers"].items()}
            assert headers.get("metadata") == "true", (host, entry)
            assert "x-forwarded-for" not in headers, (host, entry)


def test_one_client_never_sends_more_than_5_requests_per_second(matrix):
    for host, requests in matrix.requests.items():
        times = sorted(entry["time"] for entry in requests)
        gaps = [later - earlier for earlier, later in zip(times, times[1:])]
        # 0.2 s apart at least; the emulator notes arrival times, which may lag
        # the client's own by a few tens of milliseconds on a busy machine.
        assert all(gap >= MIN_REQUEST_INTERVAL - ARRIVAL_JITTER for gap in gaps), (host, gaps)


def _check_requests(matrix, case):
    if case.listener != "emulator":
        assert matrix.requests[case.name] == [], "the emulator of %s was not supposed to be used" % case.name
        return
    for host in (case.name,) + ((_fresh(case.name),) if case.fails else ()):
        statuses = [entry["status"] for entry in matrix.requests[host]]
        if callable(case.requests):
            assert case.requests(statuses), "%s: statuses %s; expected %s" % (
                host, statuses, getattr(case.requests, "description", "see the case"))
        elif case.requests is not None:
            assert statuses == case.requests, host


def _check_bound(matrix, case):
    for host in (case.name,) + ((_fresh(case.name),) if case.fails else ()):
        reported = _result(matrix, host).get("imds_seconds")
        assert isinstance(reported, float), "%s reported no imds_seconds: %s" % (host, _result(matrix, host))
        assert reported <= case.bound + IMDS_SECONDS_SLACK, (
            "%s spent %.1f s on IMDS by its own account; the bound is %.1f s (%s)" % (
                host, reported, case.bound, case.bound_text))
        runs = matrix.durations[host]
        assert len(runs) == 1, "%s: expected one module process, the wrapper logged %s" % (host, runs)
        assert runs[0] <= case.bound + PROCESS_SLACK, (
            "%s took %.1f s; the bound is %.1f s (%s) + %.0f s to start the module" % (
                host, runs[0], case.bound, case.bound_text, PROCESS_SLACK))


# --------------------------------------------------------------------------- nginx_frontends

# Recovering and lasting faults; each host renders its own configuration file.
ROLE_CASES = ("server-errors", "html-200", "oversize", "truncated", "hang", "unavailable-forever")


def test_failed_read_leaves_the_nginx_configuration_untouched(emulator_fleet, run_playbook, tmp_path):
    cases = [CASES_BY_NAME[name] for name in ROLE_CASES]
    vms = {case.name: private_vm("10.77.1.%d" % (10 + index), 18460 + index) for index, case in enumerate(cases)}
    fleet = emulator_fleet(vms)
    conf_root = tmp_path / "nginx"
    hosts, before = first_role_run(run_playbook, conf_root, fleet.endpoints, lambda name, endpoint, directory: (
        role_host_vars(endpoint, directory, CASES_BY_NAME[name].timeout or DEFAULT_TIMEOUT,
                       CASES_BY_NAME[name].retry_timeout)))
    inventory = _inventory(hosts)
    forks = ("--forks", str(len(cases)))

    for case in cases:
        fleet[case.name].set_scenario(with_faults(vms[case.name], *case.faults))
    faulted = run_playbook(ROLE_PLAYBOOK, inventory=inventory, extra_args=forks)

    assert traceback_lines(faulted) == []
    for case in cases:
        gathered = faulted.task(ROLE_GATHER_TASK, case.name)
        if case.fails:
            assert gathered.get("failed") is True, (case.name, gathered)
            assert gathered.get("error_code") == case.error_code, (case.name, gathered)
            assert ROLE_WRITE_TASK not in role_task_names(faulted, case.name)
        else:
            assert not gathered.get("failed"), (case.name, gathered)
            assert faulted.task(ROLE_WRITE_TASK, case.name)["changed"] is False
    # Same bytes and not even rewritten: mtimes are unchanged too.
    assert snapshot(conf_root) == before
