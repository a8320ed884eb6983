# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The modules as users run them: the collection built and installed, real
# ansible-playbook runs against emulated VMs (one per inventory host), through
# the task path, gather_facts, module_defaults and check mode, and every
# documented IMDS answer leading to the documented behaviour.


import json

import pytest

from support.documented import documented_facts
from support.paths import SCENARIO_DIR


def scenario(name):
    return json.loads((SCENARIO_DIR / (name + ".json")).read_text(encoding="utf-8"))


def fleet_inventory(fleet, names, **host_vars):
    hosts = {}
    for name in names:
        hosts[name] = dict(ansible_connection="local", imds_endpoint=fleet.endpoints[name], **host_vars)
    return {"all": {"hosts": hosts}}


TASK_PLAY = """
- name: Load balancer facts as a task
  hosts: all
  gather_facts: false
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{ imds_endpoint }}"
      retry_timeout: 5
  tasks:
    - name: Read the load balancer metadata
      imds.azure.loadbalancer_facts:
      register: gathered
      ignore_errors: true

    - name: Report the facts the host has now
      ansible.builtin.debug:
        msg: "{{ ansible_facts.azure_loadbalancer | default('no facts') }}"
"""


def test_task_path_on_every_kind_of_host(emulator_fleet, run_playbook):
    # The example from the module's EXAMPLES, on a fleet where every host is a different kind of VM.
    kinds = ["documented", "real-world", "no-outer-key", "ipv6-dual-stack", "many-rules", "empty", "no-loadbalancer",
             "basic-sku", "scale-set"]
    fleet = emulator_fleet({name: name for name in kinds})
    result = run_playbook(TASK_PLAY, inventory=fleet_inventory(fleet, kinds), extra_args=["--forks", "10"])
    result.assert_ok()

    facts = {name: result.task("Report the facts the host has now", name)["msg"] for name in kinds}
    assert facts["documented"] == documented_facts()
    assert facts["no-outer-key"]["available"] is True
    assert len(facts["many-rules"]["inbound_rules"]) == len(scenario("many-rules")["loadbalancer"]["loadbalancer"]["inboundRules"])
    assert facts["empty"]["available"] is True and facts["empty"]["inbound_rules"] == []
    for name in ("no-loadbalancer", "basic-sku"):
        assert facts[name]["available"] is False
        assert facts[name]["reason"] == "no_loadbalancer"
        assert "Standard SKU" in facts[name]["message"]
        assert facts[name]["inbound_rules"] == [] and facts[name]["inbound_rules_by_backend_port"] == {}
    real = facts["real-world"]
    assert {rule["protocol"] for rule in real["inbound_rules"]} <= {"tcp", "udp", "all"}
    assert all(isinstance(rule["backend_port"], int) for rule in real["inbound_rules"])
    assert any(rule["all_ports"] for rule in real["inbound_rules"])
    assert all(address == address.lower() for address in real["frontend_ips"])
    for name in kinds:
        assert result.task("Read the load balancer metadata", name)["changed"] is False
        assert all("X-Forwarded-For" not in entry["headers"] for entry in fleet[name].requests())


def test_gather_facts_path_with_module_defaults(emulator_fleet, run_playbook):
    fleet = emulator_fleet({"web-0": "documented", "web-1": "no-loadbalancer"})
    result = run_playbook(
        """
        - name: Gather the load balancer facts with the usual facts
          hosts: all
          # Parallel fact modules run as async jobs bounded by gather_timeout (10 s by
          # default); leave room for a loaded test machine.
          gather_timeout: 60
          vars:
            ansible_facts_modules: [smart, imds.azure.loadbalancer_facts]
          module_defaults:
            group/imds.azure.imds:
              endpoint: "{{ imds_endpoint }}"
          tasks:
            - name: Report what gather_facts set
              ansible.builtin.debug:
                msg:
                  lb: "{{ ansible_facts.azure_loadbalancer }}"
                  system: "{{ ansible_facts.system }}"
        """,
        inventory=fleet_inventory(fleet, ["web-0", "web-1"]),
    ).assert_ok()
    first = result.task("Report what gather_facts set", "web-0")["msg"]
    assert first["lb"] == documented_facts()
    assert first["system"] == "Linux", "smart still gathered the usual facts"
    assert result.task("Report what gather_facts set", "web-1")["msg"]["lb"]["reason"] == "no_loadbalancer"
    assert [entry["path"] for entry in fleet["web-0"].requests()] == ["/metadata/loadbalancer"]


def test_check_mode_returns_the_same_facts(emulator, run_playbook):
    imds = emulator("documented")
    playbook = TASK_PLAY
    inventory = {"all": {"hosts": {"localhost": {"ansible_connection": "local", "imds_endpoint": imds.endpoint}}}}
    checked = run_playbook(playbook, inventory=inventory, check=True).assert_ok()
    assert checked.task("Report the facts the host has now")["msg"] == documented_facts()
    assert checked.task("Read the load balancer metadata")["changed"] is False


def test_module_options_reach_the_request(emulator, run_playbook):
    imds = emulator("documented")
    result = run_playbook(
        f"""
        - name: Options of the facts module
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Ask for a newer api-version
              imds.azure.loadbalancer_facts:
                endpoint: {imds.endpoint}
                api_version: "2025-04-07"
                timeout: 2
                retry_timeout: 0
        """
    ).assert_ok()
    facts = result.task("Ask for a newer api-version")["ansible_facts"]["azure_loadbalancer"]
    assert facts["api_version"] == "2025-04-07"
    assert [entry["query"] for entry in imds.requests()] == ["api-version=2025-04-07"]


# Documented IMDS answers, served by the emulator as faults or by its own rules,
# with the error_code each must give (None: the module succeeds).
DOCUMENTED_ANSWERS = {
    "lb-404-no-metadata": ({"loadbalancer_error": "no_metadata"}, {}, "no_loadbalancer_fact"),
    "lb-404-not-available": ({"faults": [{"status": 404, "lb_error": "not_available", "seconds": 60}]}, {}, "loadbalancer_unavailable"),
    "lb-404-enabling": ({"faults": [{"status": 404, "lb_error": "enabling", "seconds": 60}]}, {}, "loadbalancer_unavailable"),
    "imds-400-old-api-version": ({}, {"api_version": "2019-06-01"}, "bad_api_version"),
    "imds-400-unknown-api-version": ({}, {"api_version": "2099-01-01"}, "bad_api_version"),
    "imds-405": ({"faults": [{"status": 405, "count": 5}]}, {}, "method_not_allowed"),
    "imds-410": ({"faults": [{"status": 410, "seconds": 60}]}, {}, "gone"),
    "imds-429": ({"faults": [{"status": 429, "seconds": 60}]}, {}, "throttled"),
    "imds-500": ({"faults": [{"status": 500, "seconds": 60}]}, {}, "server_error"),
    "imds-503": ({"faults": [{"status": 503, "seconds": 60}]}, {}, "unavailable"),
}


def test_each_documented_answer_leads_to_the_documented_behaviour(emulator_fleet, run_playbook):
    base = scenario("documented")
    hosts = {}
    for name, (overrides, _options, _code) in DOCUMENTED_ANSWERS.items():
        document = dict(base, **overrides)
        if "loadbalancer_error" in overrides:
            document.pop("loadbalancer")
        hosts[name] = document
    fleet = emulator_fleet(hosts)
    inventory = {"all": {"hosts": {
        name: {"ansible_connection": "local", "imds_endpoint": fleet.endpoints[name],
               "lb_api_version": options.get("api_version", "2020-10-01")}
        for name, (_overrides, options, _code) in DOCUMENTED_ANSWERS.items()}}}
    result = run_playbook(
        """
        - name: Documented IMDS answers
          hosts: all
          gather_facts: false
          tasks:
            - name: Read the load balancer metadata
              imds.azure.loadbalancer_facts:
                endpoint: "{{ imds_endpoint }}"
                api_version: "{{ lb_api_version }}"
                retry_timeout: 2
              register: gathered
              ignore_errors: true
        """,
        inventory=inventory, extra_args=["--forks", "10"],
    )
    assert "Traceback" not in result.stdout + result.stderr
    for name, (_overrides, _options, expected) in DOCUMENTED_ANSWERS.items():
        task = result.task("Read the load balancer metadata", name)
        if expected == "no_loadbalancer_fact":
            assert not task.get("failed"), task
            assert task["ansible_facts"]["azure_loadbalancer"]["reason"] == "no_loadbalancer"
            continue
        assert task["failed"] is True, (name, task)
        assert task["error_code"] == expected, (name, task["msg"])
        assert "ansible_facts" not in task, "a failure never returns facts"
        assert task["msg"] and len(task["msg"]) < 600
    assert "Newest versions IMDS offers" in result.task("Read the load balancer metadata", "imds-400-unknown-api-version")["msg"]
    transient = [name for name, (_o, _p, code) in DOCUMENTED_ANSWERS.items()
                 if code in ("loadbalancer_unavailable", "gone", "throttled", "server_error", "unavailable")]
    for name in transient:
        assert len(fleet[name].requests()) > 1, "%s was retried" % name
        assert "Gave up after" in result.task("Read the load balancer metadata", name)["msg"]
    for name in ("imds-405", "imds-400-old-api-version", "imds-400-unknown-api-version"):
        assert len(fleet[name].requests()) == 1, "%s was not retried" % name


def test_metadata_info_reads_other_paths(emulator, run_playbook):
    imds = emulator("scale-set")
    expected = imds.scenario()["instance"]
    result = run_playbook(
        f"""
        - name: General IMDS module
          hosts: localhost
          gather_facts: false
          module_defaults:
            group/imds.azure.imds:
              endpoint: {imds.endpoint}
              retry_timeout: 0
          tasks:
            - name: Read compute
              imds.azure.metadata_info:
                path: instance/compute
            - name: Read one leaf as text
              imds.azure.metadata_info:
                path: /metadata/instance/compute/vmScaleSetName
                format: text
            - name: Read the versions
              imds.azure.metadata_info:
                path: versions
            - name: Read a leaf as JSON, which IMDS refuses
              imds.azure.metadata_info:
                path: instance/compute/vmId
              ignore_errors: true
            - name: Read a path that does not exist
              imds.azure.metadata_info:
                path: instance/nothing/here
              ignore_errors: true
        """
    ).assert_ok()
    assert result.task("Read compute")["metadata"] == expected["compute"]
    assert result.task("Read one leaf as text")["metadata"] == expected["compute"]["vmScaleSetName"]
    assert "2020-10-01" in result.task("Read the versions")["metadata"]["apiVersions"]
    assert result.task("Read a leaf as JSON, which IMDS refuses")["error_code"] == "bad_request"
    assert result.task("Read a path that does not exist")["error_code"] == "not_found"
    assert result.task("Read compute")["changed"] is False


@pytest.mark.parametrize("scenario_name", ["hostile"])
def test_hostile_values_fail_cleanly_without_facts(emulator, run_playbook, scenario_name):
    imds = emulator(scenario_name)
    result = run_playbook(TASK_PLAY, inventory={"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "imds_endpoint": imds.endpoint}}}})
    task = result.task("Read the load balancer metadata")
    assert task["failed"] is True
    assert task["error_code"] == "invalid_metadata"
    assert "cannot be used" in task["msg"]
    assert result.task("Report the facts the host has now")["msg"] == "no facts"
    assert "Traceback" not in result.stdout + result.stderr
