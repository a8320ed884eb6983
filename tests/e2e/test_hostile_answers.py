# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Answers no IMDS sends, through the installed collection: each inventory host
# reads from its own stand-in on loopback (a raw server sending exact bytes, or
# the emulator), all in one ansible-playbook run. For every case: the result the
# collection promises (a clean failure with its error_code, or the facts),
# never a traceback, and a jsonfile fact cache filled by an earlier good run
# that stays byte for byte the same. A second test runs the nginx_frontends
# role on the same kinds of answers and checks the rendered configuration is
# untouched.

import json
from dataclasses import dataclass

import pytest

from support.faults import (
    INFO_TASK,
    LOADBALANCER_TASK,
    MODULES_PLAYBOOK,
    REPORT_TASK,
    ROLE_GATHER_TASK,
    ROLE_PLAYBOOK,
    ROLE_WRITE_TASK,
    HostileServer,
    bundled_scenario,
    first_role_run,
    once,
    private_vm,
    role_host_vars,
    role_task_names,
    snapshot,
    traceback_lines,
    with_faults,
)

DOCUMENTED = bundled_scenario("documented")["loadbalancer"]
TIMEOUT = 2.0
RETRY_TIMEOUT = 2.0


def http(status_line, headers, body=b""):
    """The bytes of one answer: status line, header lines, blank line, body."""
    return ("%s\r\n%s\r\n" % (status_line, "".join(line + "\r\n" for line in headers))).encode("utf-8") + body


def json_answer(document, status="HTTP/1.1 200 OK", extra=(), length=None, cut=None):
    body = document if isinstance(document, bytes) else json.dumps(document).encode("utf-8")
    sent = body[:cut] if cut is not None else body
    headers = ["Content-Type: application/json; charset=utf-8", "Connection: close"]
    headers.append(length if length is not None else "Content-Length: %d" % len(body))
    return http(status, headers + list(extra), sent)


DEEP = b"[" * 50000 + b"]" * 50000
IMPLAUSIBLE = {"loadbalancer": {"inboundRules": [{"frontendIpAddress": "169.254.169.254", "protocol": "tcp",
                                                  "frontendPort": 80, "backendPort": 80,
                                                  "privateIpAddress": "10.1.0.4"}]}}
PROXY_404 = (b"<html><body><h1>Not found</h1><p>No load balancer metadata is found. Please check if your VM is "
             b"using any non-basic SKU load balancer and retry later.</p></body></html>")


@dataclass
class Case:
    name: str
    kind: str                   # crash | option | empty | framing | address | meaning
    raw: bytes = None           # what a raw server answers; None: the emulator, answering 503 for ever
    module: str = "loadbalancer_facts"
    options: dict = None        # extra module options
    error_code: str = None      # None: the read must succeed with the documented facts

    @property
    def fails(self):
        return self.error_code is not None


CASES = [
    # --- crashes before: now a clean failure -------------------------------------------------
    Case("integer-header-beyond-limit", "crash", json_answer(DOCUMENTED, length="Content-Length: " + "9" * 5000, cut=40),
         error_code="invalid_json"),
    Case("retry-after-beyond-limit", "crash",
         json_answer({"error": "Internal service unavailable. Retry later"}, status="HTTP/1.1 503 Unavailable",
                     extra=["Retry-After: " + "9" * 5000]), error_code="unavailable"),
    Case("deep-error-body-400", "crash", json_answer(b'{"error": ' + DEEP + b"}", status="HTTP/1.1 400 Bad Request"),
         error_code="bad_request"),
    Case("deep-error-body-404", "crash", json_answer(DEEP, status="HTTP/1.1 404 Not Found"), error_code="not_found"),
    # --- option values: refused before any request --------------------------------------------------
    Case("retry-timeout-nan", "option", options={"retry_timeout": "nan"}, error_code="invalid_option"),
    Case("retry-timeout-inf", "option", options={"retry_timeout": "inf"}, error_code="invalid_option"),
    Case("timeout-nan", "option", options={"timeout": "nan"}, error_code="invalid_option"),
    Case("timeout-huge", "option", options={"timeout": 1e300}, error_code="invalid_option"),
    # --- answers that say nothing ------------------------------------------------------------------
    Case("empty-object", "empty", json_answer({}), error_code="empty_answer"),
    Case("null-loadbalancer", "empty", json_answer({"loadbalancer": None}), error_code="empty_answer"),
    Case("empty-loadbalancer", "empty", json_answer({"loadbalancer": {}}), error_code="empty_answer"),
    Case("implausible-address", "address", json_answer(IMPLAUSIBLE), error_code="invalid_metadata"),
    Case("proxy-page-quoting-imds", "meaning",
         http("HTTP/1.1 404 Not Found", ["Content-Type: text/html", "Content-Length: %d" % len(PROXY_404)], PROXY_404),
         error_code="not_found"),
    # --- HTTP framing -----------------------------------------------------------------------------------
    Case("length-with-plus-sign", "framing", json_answer(DOCUMENTED, length="Content-Length: +%d" % len(
        json.dumps(DOCUMENTED)), cut=60), error_code="truncated"),
    Case("length-repeated", "framing", json_answer(DOCUMENTED, length="Content-Length: {0}\r\nContent-Length: {0}".format(
        len(json.dumps(DOCUMENTED))), cut=60), error_code="truncated"),
    Case("early-hints-first", "framing",
         http("HTTP/1.1 103 Early Hints", ["Link: </style.css>; rel=preload"]) + json_answer(DOCUMENTED)),
    Case("gzip-text", "framing", http("HTTP/1.1 200 OK", [
        "Content-Type: text/plain; charset=utf-8", "Content-Encoding: gzip", "Content-Length: 4"], b"\x1f\x8b\x08\x00"),
        module="metadata_info", error_code="bad_encoding"),
]
CASES_BY_NAME = {case.name: case for case in CASES}


def _host_vars(case, endpoint, hostile):
    options = dict(timeout=TIMEOUT, retry_timeout=RETRY_TIMEOUT)
    if hostile and case.options:
        options.update(case.options)
    return {"ansible_connection": "local", "imds_endpoint": endpoint, "imds_module": case.module,
            "imds_timeout": options["timeout"], "imds_retry_timeout": options["retry_timeout"],
            "imds_path": "instance/compute/name", "imds_format": "text"}


@dataclass
class HostileRun:
    baseline_facts: dict
    faulted: object
    cache_before: dict
    cache_after: dict
    emulator_requests: dict


def _run(emulator_fleet, run_playbook, tmp_path_factory):
    documented = bundled_scenario("documented")
    fleet = emulator_fleet({case.name: documented for case in CASES})
    cache_dir = tmp_path_factory.mktemp("hostile-fact-cache")
    cache_env = {"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache_dir),
                 "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "0"}
    forks = ("--forks", str(len(CASES)))

    # 1. A good run from the emulator fills every host's fact cache.
    hosts = {case.name: _host_vars(case, fleet.endpoints[case.name], hostile=False) for case in CASES}
    baseline = run_playbook(MODULES_PLAYBOOK, inventory={"all": {"hosts": hosts}}, env=cache_env, extra_args=forks)
    baseline.assert_ok()
    baseline_facts = {case.name: baseline.task(LOADBALANCER_TASK, case.name)["ansible_facts"]["azure_loadbalancer"]
                      for case in CASES if case.module == "loadbalancer_facts"}
    cache_before = snapshot(cache_dir)

    # 2. Every host's endpoint now answers in its hostile way.
    servers = []
    try:
        for case in CASES:
            if case.raw is None:
                fleet[case.name].set_scenario(with_faults(documented, {"status": 503}))
                endpoint = fleet.endpoints[case.name]
            else:
                server = HostileServer("raw", raw=case.raw)
                servers.append(server)
                endpoint = server.endpoint
            hosts[case.name] = _host_vars(case, endpoint, hostile=True)
        faulted = run_playbook(MODULES_PLAYBOOK, inventory={"all": {"hosts": hosts}}, env=cache_env, extra_args=forks)
        requests = {case.name: fleet[case.name].requests() for case in CASES if case.raw is None}
    finally:
        for server in servers:
            server.close()
    return HostileRun(baseline_facts=baseline_facts, faulted=faulted, cache_before=cache_before,
                      cache_after=snapshot(cache_dir), emulator_requests=requests)


@pytest.fixture
def hostile(emulator_fleet, run_playbook, tmp_path_factory):
    return once("hostile answers", lambda: _run(emulator_fleet, run_playbook, tmp_path_factory))


def _result(run, case):
    return run.faulted.task(LOADBALANCER_TASK if case.module == "loadbalancer_facts" else INFO_TASK, case.name)


@pytest.mark.parametrize("case", [case for case in CASES if case.fails], ids=lambda case: case.name)
def test_hostile_answer_fails_cleanly_with_its_error_code(hostile, case):
    result = _result(hostile, case)
    assert result.get("failed") is True, result
    assert result.get("error_code") == case.error_code, result
    assert result.get("msg") and len(result["msg"]) < 1200, result
    assert "Traceback" not in json.dumps(result) and "module_stderr" not in result, result
    assert "ansible_facts" not in result and "metadata" not in result, result
    assert isinstance(result.get("imds_requests"), int) and isinstance(result.get("imds_seconds"), float), result


@pytest.mark.parametrize("case", [case for case in CASES if not case.fails], ids=lambda case: case.name)
def test_hostile_but_valid_answer_gives_the_documented_facts(hostile, case):
    result = _result(hostile, case)
    assert not result.get("failed"), result
    assert result["ansible_facts"]["azure_loadbalancer"] == hostile.baseline_facts[case.name]
    assert result["imds_requests"] == 1


@pytest.mark.parametrize("case", [case for case in CASES if case.kind == "option"], ids=lambda case: case.name)
def test_invalid_durations_send_nothing_and_cost_nothing(hostile, case):
    result = _result(hostile, case)
    assert (result["imds_requests"], result["imds_seconds"]) == (0, 0.0)
    assert hostile.emulator_requests[case.name] == []


@pytest.mark.parametrize("case", [case for case in CASES if case.module == "loadbalancer_facts"],
                         ids=lambda case: case.name)
def test_facts_after_a_hostile_answer_are_the_old_ones(hostile, case):
    assert hostile.faulted.task(REPORT_TASK, case.name)["msg"] == hostile.baseline_facts[case.name]


def test_fact_cache_is_untouched_by_hostile_answers(hostile):
    assert hostile.cache_before
    changed = [name for name in hostile.cache_before
               if hostile.cache_after.get(name, (None,))[0] != hostile.cache_before[name][0]]
    assert changed == []
    failing = {case.name for case in CASES if case.fails}
    rewritten = [name for name in hostile.cache_before if name.split("_")[-1] in failing
                 and hostile.cache_after[name][1] != hostile.cache_before[name][1]]
    assert rewritten == []


def test_no_traceback_anywhere(hostile):
    assert traceback_lines(hostile.faulted) == []
    assert "Traceback" not in hostile.faulted.stderr


# --------------------------------------------------------------------------- nginx_frontends

ROLE_CASES = ("deep-error-body-400", "retry-timeout-nan", "empty-loadbalancer", "implausible-address",
              "proxy-page-quoting-imds", "length-with-plus-sign")


def _role_vars(endpoint, directory, options):
    return role_host_vars(endpoint, directory, options.get("timeout", TIMEOUT),
                          options.get("retry_timeout", RETRY_TIMEOUT))


def test_hostile_answer_leaves_the_nginx_configuration_untouched(emulator_fleet, run_playbook, tmp_path):
    cases = [CASES_BY_NAME[name] for name in ROLE_CASES]
    vms = {case.name: private_vm("10.77.0.%d" % (10 + index), 18440 + index) for index, case in enumerate(cases)}
    fleet = emulator_fleet(vms)
    conf_root = tmp_path / "nginx"
    hosts, before = first_role_run(run_playbook, conf_root, fleet.endpoints,
                                   lambda name, endpoint, directory: _role_vars(endpoint, directory, {}))
    forks = ("--forks", str(len(cases)))

    servers = []
    try:
        for case in cases:
            if case.raw is None:
                fleet[case.name].set_scenario(with_faults(vms[case.name], {"status": 503}))
                endpoint = fleet.endpoints[case.name]
            else:
                server = HostileServer("raw", raw=case.raw)
                servers.append(server)
                endpoint = server.endpoint
            hosts[case.name] = _role_vars(endpoint, conf_root / case.name, case.options or {})
        faulted = run_playbook(ROLE_PLAYBOOK, inventory={"all": {"hosts": hosts}}, extra_args=forks)
    finally:
        for server in servers:
            server.close()

    assert traceback_lines(faulted) == []
    for case in cases:
        gathered = faulted.task(ROLE_GATHER_TASK, case.name)
        assert gathered.get("failed") is True, (case.name, gathered)
        assert gathered.get("error_code") == case.error_code, (case.name, gathered)
        assert ROLE_WRITE_TASK not in role_task_names(faulted, case.name)
    assert snapshot(conf_root) == before


# --------------------------------------------------------------------------- what Azure really sends

REAL_404 = b'{ "error": "No load balancer metadata is found. Please check if your VM is using any non-basic SKU ' \
           b'load balancer and retry later." }'
REAL_CAPTURE = {"loadbalancer": {
    "publicIpAddresses": [{"frontendIpAddress": "[2603:10e1:100:2::1:1]", "privateIpAddress": "[ace:cab:deca:deed::1]"},
                          {"frontendIpAddress": "51.0.0.1", "privateIpAddress": "10.1.0.4"}],
    "inboundRules": [{"frontendIpAddress": "[2603:10e1:100:2::1:1]", "protocol": "Tcp", "frontendPort": 80,
                      "backendPort": 443, "privateIpAddress": "[ace:cab:deca:deed::1]"}],
    "outboundRules": []}}
MISSPELT = {"loadbalancer": {"publicIpAddresses": [], "inboundRules": [],
                             "outboundRules": [{"frotendIpAddress": "50.0.0.1", "privateIpAddress": "10.1.0.4"}]}}


def test_what_azure_really_sends_becomes_the_promised_facts(emulator_fleet, run_playbook):
    documented = dict(bundled_scenario("documented"))
    fleet = emulator_fleet({"gateway": "gateway",
                            "real-capture": dict(documented, loadbalancer=REAL_CAPTURE),
                            "misspelt": dict(documented, loadbalancer=MISSPELT)})
    with HostileServer("raw", raw=http("HTTP/1.1 404 Not Found", [
            "Content-Type: application/json; charset=utf-8", "Content-Length: %d" % len(REAL_404)], REAL_404)) as real_404:
        endpoints = dict(fleet.endpoints, **{"real-404": real_404.endpoint})
        hosts = {name: _host_vars(Case(name, "fidelity"), endpoint, hostile=False) for name, endpoint in endpoints.items()}
        result = run_playbook(MODULES_PLAYBOOK, inventory={"all": {"hosts": hosts}}, extra_args=("--forks", "4")).assert_ok()
    facts = {name: result.task(LOADBALANCER_TASK, name)["ansible_facts"]["azure_loadbalancer"] for name in hosts}

    assert facts["gateway"]["tunnel_interfaces"] == [
        {"gateway_ip_address": "10.20.0.4", "gateway_port": 10800, "identifier": 800, "type": "internal",
         "protocol": "vxlan", "local_ip_address": "10.20.1.5", "local_port": 10800},
        {"gateway_ip_address": "10.20.0.4", "gateway_port": 10801, "identifier": 801, "type": "external",
         "protocol": "vxlan", "local_ip_address": "10.20.1.5", "local_port": 10801}]
    assert [(rule["protocol"], rule["all_ports"]) for rule in facts["gateway"]["inbound_rules"]] == [("all", True)]
    assert facts["real-capture"]["frontend_ips"] == ["51.0.0.1", "2603:10e1:100:2::1:1"]
    assert facts["real-capture"]["inbound_rules"][0]["protocol"] == "tcp"
    assert facts["real-capture"]["outbound_rules"] == []
    assert facts["misspelt"]["outbound_rules"] == [{"frontend_ip_address": "50.0.0.1", "private_ip_address": "10.1.0.4"}]
    assert (facts["real-404"]["available"], facts["real-404"]["reason"]) == (False, "no_loadbalancer")
