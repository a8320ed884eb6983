# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# What the modules send and what they accept, end to end: proxy variables are
# ignored, nothing but GET with the Metadata header goes out, redirects are
# not followed, bodies are capped, servers that misbehave on purpose get a
# clean failure in bounded time, values that would break a configuration
# never become facts, and bad options are refused before any request.

import json
import re
import urllib.request

import pytest

from support.ansible_env import MANAGED_HOST_PYTHON
from support.faults import (
    POISON_FRONTEND,
    PROXY_VARIABLES,
    HostileServer,
    TrapServer,
    bundled_scenario,
    module_seconds,
    once,
    timed_interpreters,
    traceback_lines,
    with_faults,
)
from support.paths import INSTANCE_PATH, LOADBALANCER_PATH

TIMEOUT = 2.0
# Seconds on top of a bound for starting the module's Python process, with
# every host of the run starting at once (support.faults.timed_interpreters).
PROCESS_SLACK = 5.0
# How long the header-dripping server keeps a request open: far longer than
# TIMEOUT + PROCESS_SLACK, so a client that lets it run is caught.
HEADER_DRIP_SECONDS = 16.0
MAX_BODY_BYTES = 1024 * 1024
# The request headers the client sends, and nothing else.
CLIENT_HEADERS = {"host", "metadata", "user-agent"}


def _lower_keys(headers):
    return {name.lower(): value for name, value in headers.items()}


# --------------------------------------------------------------------------- proxies

PROXY_PLAYBOOK = """
- name: Read IMDS with every proxy variable pointing at a trap
  hosts: all
  gather_facts: false
  environment: "{{ proxy_environment }}"
  tasks:
    - name: Read the load balancer facts
      imds.azure.loadbalancer_facts:
        endpoint: "{{ imds_endpoint }}"
        retry_timeout: 0

    - name: Read the compute metadata
      imds.azure.metadata_info:
        endpoint: "{{ imds_endpoint }}"
        path: instance/compute
        retry_timeout: 0
      register: compute

    - name: Read the VM id as text
      imds.azure.metadata_info:
        endpoint: "{{ imds_endpoint }}"
        path: instance/compute/vmId
        format: text
        retry_timeout: 0
      register: vm_id

    - name: Show what the modules saw through the proxy settings
      ansible.builtin.debug:
        msg:
          environment: "{{ lookup('ansible.builtin.env', 'http_proxy') }}"
          compute_name: "{{ compute.metadata.name }}"
          vm_id: "{{ vm_id.metadata }}"
"""


def test_proxy_variables_are_ignored(emulator, run_playbook):
    scenario = bundled_scenario("documented")
    imds = emulator(scenario)
    with TrapServer() as trap:
        proxies = {name: trap.url for name in PROXY_VARIABLES}
        # An empty no_proxy excludes nothing, whatever the machine has set.
        proxies.update(no_proxy="", NO_PROXY="")

        # The trap works: a client that honours the variables ends up there.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": trap.url}))
        with opener.open(imds.endpoint + LOADBALANCER_PATH + "?api-version=2020-10-01", timeout=10) as answer:
            assert POISON_FRONTEND in answer.read().decode("utf-8")
        assert len(trap.requests) == 1 and trap.requests[0]["target"].startswith("http://127.0.0.1:")
        del trap.requests[:]
        trap.connections = 0

        result = run_playbook(
            PROXY_PLAYBOOK,
            inventory={"all": {"hosts": {"vm": {"ansible_connection": "local", "imds_endpoint": imds.endpoint}}}},
            extra_vars={"proxy_environment": proxies}, env=proxies)
        trap_requests, trap_connections = list(trap.requests), trap.connections

    result.assert_ok()
    assert traceback_lines(result) == []
    assert trap_connections == 0 and trap_requests == []
    shown = result.task("Show what the modules saw through the proxy settings", "vm")["msg"]
    assert shown["environment"] == trap.url  # the variables were really set for the modules
    assert shown["compute_name"] == scenario["instance"]["compute"]["name"]
    assert shown["vm_id"] == scenario["instance"]["compute"]["vmId"]
    facts = result.task("Read the load balancer facts", "vm")["ansible_facts"]["azure_loadbalancer"]
    assert facts["available"] is True and POISON_FRONTEND not in facts["frontend_ips"]

    requests = imds.requests()
    assert [(entry["path"], entry["status"]) for entry in requests] == [
        (LOADBALANCER_PATH, 200), (INSTANCE_PATH + "/compute", 200), (INSTANCE_PATH + "/compute/vmId", 200)]


# --------------------------------------------------------------------------- hostile servers

HOSTILE_PLAYBOOK = """
- name: Read IMDS from servers that misbehave on purpose
  hosts: all
  gather_facts: false
  strategy: free
  tasks:
    - name: Read the load balancer facts
      imds.azure.loadbalancer_facts:
        endpoint: "{{ imds_endpoint }}"
        timeout: "{{ imds_timeout }}"
        retry_timeout: 0
      register: gathered
      ignore_errors: true
      when: imds_module == 'loadbalancer_facts'

    - name: Read the compute metadata
      imds.azure.metadata_info:
        endpoint: "{{ imds_endpoint }}"
        path: instance/compute
        timeout: "{{ imds_timeout }}"
        retry_timeout: 0
      register: read
      ignore_errors: true
      when: imds_module == 'metadata_info'

    - name: Report the load balancer facts after the read
      ansible.builtin.debug:
        msg: "{{ ansible_facts.azure_loadbalancer | default('absent') }}"
"""

# One inbound rule or address pair per entry, each crafted to escape from an
# nginx configuration if it were used unchecked (tools/scenarios/hostile.json).
HOSTILE_ENTRIES = [
    (section, entry)
    for section, entries in bundled_scenario("hostile")["loadbalancer"]["loadbalancer"].items()
    for entry in entries
    if any(not re.match(r"^[0-9a-f.:]+$|^\d+$|^(tcp|udp)$", str(value)) for value in entry.values())
]
HOSTILE_STRINGS = ("include /etc/passwd", "attacker.example", "default_server", "owned", "${remote_addr}")


# JSON nested deeper than any IMDS answer: deep enough to exhaust Python's
# recursion limit in the JSON parser, and deep enough to parse but not to be
# handled any further (IMDS documents nest a handful of levels).
DEEP_JSON_DEPTH_PARSER = 100000
DEEP_JSON_DEPTH_RESULT = 900


def deeply_nested(depth):
    """A JSON text of depth nested arrays; well under the body cap."""
    return "[" * depth + "]" * depth


def _one_hostile_entry(documented, section, entry):
    scenario = json.loads(json.dumps(documented))
    scenario["loadbalancer"]["loadbalancer"][section].append(entry)
    return scenario


@pytest.fixture
def hostile_run(emulator_fleet, run_playbook, collection_install, tmp_path_factory):
    """The run against hostile servers, done once for all the tests that look at it."""
    python = MANAGED_HOST_PYTHON
    timing_dir = tmp_path_factory.mktemp("module-times")
    return once("hostile servers", lambda: _run_hostile(emulator_fleet, run_playbook, python, timing_dir))


def _run_hostile(emulator_fleet, run_playbook, python, timing_dir):
    documented = bundled_scenario("documented")
    emulated = {
        "redirect-loadbalancer": "loadbalancer_facts",
        "redirect-instance": "metadata_info",
        "oversize-2mib": "loadbalancer_facts",
        "oversize-2mib-instance": "metadata_info",
        "deep-json-loadbalancer": "loadbalancer_facts",
        "deep-json-instance": "metadata_info",
    }
    emulated.update({"hostile-value-%d" % index: "loadbalancer_facts" for index in range(len(HOSTILE_ENTRIES))})
    scenarios = {name: documented for name in emulated}
    for index, (section, entry) in enumerate(HOSTILE_ENTRIES):
        scenarios["hostile-value-%d" % index] = _one_hostile_entry(documented, section, entry)
    fleet = emulator_fleet(scenarios)

    with TrapServer() as trap, \
            HostileServer("endless_body") as endless, \
            HostileServer("header_drip", interval=0.5, duration=HEADER_DRIP_SECONDS) as header_drip, \
            HostileServer("garbage") as garbage, \
            HostileServer("huge_header") as huge_header:
        target = trap.url + "/metadata/loadbalancer?api-version=2020-10-01"
        fleet["redirect-loadbalancer"].set_scenario(with_faults(documented, {"redirect": target}))
        fleet["redirect-instance"].set_scenario(with_faults(documented, {"path": INSTANCE_PATH, "redirect": target}))
        fleet["oversize-2mib"].set_scenario(with_faults(documented, {"oversize": 2 * MAX_BODY_BYTES}))
        fleet["oversize-2mib-instance"].set_scenario(
            with_faults(documented, {"path": INSTANCE_PATH, "oversize": 2 * MAX_BODY_BYTES}))
        for name, path, depth in (("deep-json-loadbalancer", LOADBALANCER_PATH, DEEP_JSON_DEPTH_PARSER),
                                  ("deep-json-instance", INSTANCE_PATH, DEEP_JSON_DEPTH_RESULT)):
            fleet[name].set_scenario(with_faults(documented, {"path": path, "status": 200, "body": deeply_nested(depth),
                                                              "content_type": "application/json; charset=utf-8"}))
        endpoints = dict(fleet.endpoints)
        endpoints.update({"endless-body": endless.endpoint, "header-drip": header_drip.endpoint,
                          "garbage": garbage.endpoint, "huge-header": huge_header.endpoint})
        modules = dict(emulated, **{name: "loadbalancer_facts"
                                    for name in ("endless-body", "header-drip", "garbage", "huge-header")})
        hosts = {name: {"ansible_connection": "local", "imds_endpoint": endpoints[name], "imds_module": modules[name],
                        "imds_timeout": TIMEOUT} for name in modules}
        for name, interpreter in timed_interpreters(timing_dir, hosts, python).items():
            hosts[name]["ansible_python_interpreter"] = interpreter
        result = run_playbook(HOSTILE_PLAYBOOK, inventory={"all": {"hosts": hosts}},
                              extra_args=("--forks", str(len(hosts))))
        outcome = {
            "result": result,
            "modules": modules,
            "requests": {name: fleet[name].requests() for name in emulated},
            "trap_requests": list(trap.requests),
            "trap_connections": trap.connections,
            "endless_bytes_sent": endless.bytes_sent,
            "seconds": {name: sum(module_seconds(timing_dir, name)) for name in hosts},
        }
    print("\nhostile servers: seconds each module process took (timeout %.0f s): %s" % (
        TIMEOUT, ", ".join("%s %.1f" % item for item in sorted(outcome["seconds"].items()))))
    print("endless body: the server got %d bytes out before the client hung up (cap %d)" % (
        outcome["endless_bytes_sent"], MAX_BODY_BYTES))
    return outcome


def _read_result(run, host):
    task = "Read the load balancer facts" if run["modules"][host] == "loadbalancer_facts" else "Read the compute metadata"
    return run["result"].task(task, host)


def _assert_clean_failure(run, host, error_code, *patterns):
    result = _read_result(run, host)
    shown = json.dumps(result, sort_keys=True)[:2000]
    assert result.get("failed") is True, (host, shown)
    assert result.get("error_code") == error_code, (host, shown)
    for pattern in patterns:
        assert re.search(pattern, result["msg"]), (host, result["msg"], pattern)
    dumped = json.dumps(result)
    assert "Traceback" not in dumped and "module_stderr" not in result, (host, result)
    assert "ansible_facts" not in result and "metadata" not in result, (host, result)
    assert POISON_FRONTEND not in dumped, (host, result)
    assert run["result"].task("Report the load balancer facts after the read", host)["msg"] == "absent"
    return result


def test_no_traceback_from_hostile_servers(hostile_run):
    assert traceback_lines(hostile_run["result"]) == []


@pytest.mark.parametrize("host", ["redirect-loadbalancer", "redirect-instance"])
def test_redirects_are_not_followed(hostile_run, host):
    _assert_clean_failure(hostile_run, host, "redirect", r"HTTP 302", r"never followed")
    assert [entry["status"] for entry in hostile_run["requests"][host]] == [302]
    assert hostile_run["trap_connections"] == 0 and hostile_run["trap_requests"] == []


@pytest.mark.parametrize("host", ["oversize-2mib", "oversize-2mib-instance"])
def test_a_2_mib_body_is_refused(hostile_run, host):
    _assert_clean_failure(hostile_run, host, "too_large", r"larger than the 1048576 byte limit")
    assert [entry["status"] for entry in hostile_run["requests"][host]] == [200]


def test_a_body_without_end_is_cut_at_the_cap(hostile_run):
    _assert_clean_failure(hostile_run, "endless-body", "too_large", r"larger than the 1048576 byte limit")
    assert hostile_run["seconds"]["endless-body"] <= TIMEOUT + PROCESS_SLACK


@pytest.mark.parametrize("host, error_code", [("garbage", "bad_http"), ("huge-header", "bad_http")])
def test_answers_that_are_not_http_fail_cleanly(hostile_run, host, error_code):
    _assert_clean_failure(hostile_run, host, error_code, r"not valid HTTP")
    assert hostile_run["seconds"][host] <= TIMEOUT + PROCESS_SLACK


def test_timeout_bounds_a_server_that_drips_its_headers(hostile_run):
    # The timeout covers one request from connecting to the last byte, so a
    # server that keeps the headers coming one byte at a time cannot hold a
    # module for longer than that.
    _assert_clean_failure(hostile_run, "header-drip", "timeout", r"within 2\.0 s")
    took = hostile_run["seconds"]["header-drip"]
    assert took <= TIMEOUT + PROCESS_SLACK, (
        "header-drip held the module for %.1f s with timeout %.0f s" % (took, TIMEOUT))


@pytest.mark.parametrize("host", ["deep-json-loadbalancer", "deep-json-instance"])
def test_json_nested_beyond_reason_fails_cleanly(hostile_run, host):
    _assert_clean_failure(hostile_run, host, "invalid_json", r"JSON")
    assert [entry["status"] for entry in hostile_run["requests"][host]] == [200]


@pytest.mark.parametrize("index", range(len(HOSTILE_ENTRIES)),
                         ids=["%s-%d" % (entry[0], index) for index, entry in enumerate(HOSTILE_ENTRIES)])
def test_values_that_could_break_a_configuration_never_become_facts(hostile_run, index):
    host = "hostile-value-%d" % index
    result = _assert_clean_failure(hostile_run, host, "invalid_metadata", r"cannot be used")
    section = HOSTILE_ENTRIES[index][0]
    assert section in result["msg"], result["msg"]


def test_every_request_is_a_get_with_only_the_expected_headers(hostile_run):
    seen = 0
    for host, requests in hostile_run["requests"].items():
        for entry in requests:
            seen += 1
            assert entry["method"] == "GET", (host, entry)
            headers = _lower_keys(entry["headers"])
            assert set(headers) == CLIENT_HEADERS, (host, entry)
            assert headers["metadata"] == "true"
    assert seen >= len(hostile_run["requests"])


# --------------------------------------------------------------------------- bad options

OPTIONS_PLAYBOOK = """
- name: Refuse bad options before any request
  hosts: all
  gather_facts: false
  tasks:
    - name: Try a bad endpoint
      imds.azure.loadbalancer_facts:
        endpoint: "{{ item }}"
        retry_timeout: 0
      loop: "{{ bad_endpoints }}"
      ignore_errors: true

    - name: Try a bad api_version
      imds.azure.loadbalancer_facts:
        endpoint: "{{ imds_endpoint }}"
        api_version: "{{ item }}"
        retry_timeout: 0
      loop: "{{ bad_api_versions }}"
      ignore_errors: true

    - name: Try a bad path
      imds.azure.metadata_info:
        endpoint: "{{ imds_endpoint }}"
        path: "{{ item }}"
        retry_timeout: 0
      loop: "{{ bad_paths }}"
      ignore_errors: true
"""


def test_bad_options_are_refused_before_any_request(emulator, run_playbook):
    imds = emulator("documented")
    port = imds.endpoint.rsplit(":", 1)[1]
    with TrapServer() as trap:
        bad = {
            "bad_endpoints": [
                "https://127.0.0.1:%s" % port,                                  # TLS: not IMDS
                "http://user:secret@127.0.0.1:%s" % port,                       # credentials
                "http://127.0.0.1:%s/?x=1" % port,                              # a query
                "http://127.0.0.1:%s/\r\nX-Forwarded-For: 10.0.0.1" % port,     # header injection
                "http://127.0.0.1:%s#fragment" % port,
                "file:///etc/passwd",
                trap.url.replace("http://", "gopher://"),
                "http://127.0.0.1:0",
                "http://127.0.0.1:70000",
            ],
            "bad_api_versions": ["2020-10-01&format=text", "latest", "2020-10-01\r\nX-Forwarded-For: 1.2.3.4", ""],
            "bad_paths": ["../../etc/passwd", "instance/../versions", "instance/compute?api-version=2017-01-01",
                          "instance/compute#x", "instance/comp ute", "instance/%2e%2e", "", "/"],
        }
        result = run_playbook(
            OPTIONS_PLAYBOOK,
            inventory={"all": {"hosts": {"vm": {"ansible_connection": "local", "imds_endpoint": imds.endpoint}}}},
            extra_vars=bad)
        trap_connections = trap.connections

    assert traceback_lines(result) == []
    for task, key in (("Try a bad endpoint", "bad_endpoints"), ("Try a bad api_version", "bad_api_versions"),
                      ("Try a bad path", "bad_paths")):
        items = result.task(task, "vm")["results"]
        assert [item["item"] for item in items] == bad[key]
        for item in items:
            assert item.get("failed") is True, item
            assert item.get("error_code") == "invalid_option", item
            assert "Traceback" not in json.dumps(item)
            # The message shows what was refused, capped, and never the credentials in it.
            assert "secret" not in item["msg"] and len(item["msg"]) < 400, item["msg"]
    assert imds.requests() == []
    assert trap_connections == 0
