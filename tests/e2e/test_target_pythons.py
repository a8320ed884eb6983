# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The modules run on managed hosts under whatever Python those hosts have.
# Every version that ansible-core accepts there gets hosts of its own in one
# fleet run, and on each the modules take their main paths: a successful
# read, a VM without a load balancer (the failure handling loads lazily),
# transient errors that are retried, and hostile data that must fail cleanly.
# Python 3.8 to 3.13 run through .venv's ansible-core; 3.6 (RHEL 8) and 3.7,
# which newer releases no longer accept, through the oldest matrix
# controller that does (ansible-core 2.16).

import pytest

from support.ansible_env import OLD_TARGET_PYTHON_VERSIONS, TARGET_PYTHON_VERSIONS, matrix_controller, target_python
from support.documented import documented_facts

# Host name suffix -> emulator scenario
KINDS = {
    "lb": "documented",
    "none": "no-loadbalancer",
    "retry": "transient-then-ok",
    "hostile": "hostile",
}

PLAY = """
- name: The modules on every target Python
  hosts: all
  gather_facts: false
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{ imds_endpoint }}"
      retry_timeout: 30
  tasks:
    - name: Find out which Python runs the modules
      ansible.builtin.setup:
        gather_subset: ["!all", "!min", "python"]

    - name: Read the load balancer metadata
      imds.azure.loadbalancer_facts:
      register: gathered
      ignore_errors: true

    - name: Read the compute metadata
      imds.azure.metadata_info:
        path: instance/compute
      register: compute

    - name: Report
      ansible.builtin.debug:
        msg:
          python: "{{ ansible_facts.python.version.major }}.{{ ansible_facts.python.version.minor }}"
          facts: "{{ ansible_facts.azure_loadbalancer | default('no facts') }}"
          vm_name: "{{ compute.metadata.name }}"
"""


def find_interpreters(versions):
    found = {version: target_python(version) for version in versions}
    missing = sorted(version for version, path in found.items() if path is None)
    if missing:
        pytest.fail("No interpreter found for Python %s: the modules must be run on every Python that managed "
                    "hosts may have (looked for pythonX.Y in /usr/bin, /usr/local/bin and pyenv's versions)."
                    % ", ".join(missing))
    return found


def host_name(version, kind):
    return "py%s-%s" % (version.replace(".", ""), kind)


def fleet_run(versions, emulator_fleet, run):
    """One playbook run on hosts of every kind for every Python version; run(playbook, inventory) runs it."""
    interpreters = find_interpreters(versions)
    scenarios = {host_name(version, kind): scenario for version in versions for kind, scenario in KINDS.items()}
    fleet = emulator_fleet(scenarios)
    hosts = {}
    for version in versions:
        for kind in KINDS:
            name = host_name(version, kind)
            hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": interpreters[version],
                           "imds_endpoint": fleet.endpoints[name]}
    result = run(PLAY, {"all": {"hosts": hosts}})
    result.assert_ok()
    assert "Traceback" not in result.stdout + result.stderr
    return fleet, result


def check_every_host(versions, fleet, result):
    for version in versions:
        for kind in KINDS:
            name = host_name(version, kind)
            report = result.task("Report", name)["msg"]
            assert report["python"] == version, name
            assert report["vm_name"] == fleet[name].scenario()["instance"]["compute"]["name"], name

        lb_host, none_host, retry_host, hostile_host = (host_name(version, kind) for kind in KINDS)
        assert result.task("Report", lb_host)["msg"]["facts"] == documented_facts(), version

        none_facts = result.task("Report", none_host)["msg"]["facts"]
        assert none_facts["available"] is False and none_facts["reason"] == "no_loadbalancer", version

        assert result.task("Report", retry_host)["msg"]["facts"] == documented_facts(), version
        lb_requests = [entry for entry in fleet[retry_host].requests() if entry["path"] == "/metadata/loadbalancer"]
        assert len(lb_requests) == 3, version  # two 503 answers, then the document

        hostile = result.task("Read the load balancer metadata", hostile_host)
        assert hostile["failed"] is True and hostile["error_code"] == "invalid_metadata", version
        assert result.task("Report", hostile_host)["msg"]["facts"] == "no facts", version


def test_modules_on_every_target_python(emulator_fleet, run_playbook):
    def run(playbook, inventory):
        return run_playbook(playbook, inventory=inventory, extra_args=["--forks", "12"])

    fleet, result = fleet_run(TARGET_PYTHON_VERSIONS, emulator_fleet, run)
    check_every_host(TARGET_PYTHON_VERSIONS, fleet, result)


@pytest.mark.parametrize("release", sorted(set(OLD_TARGET_PYTHON_VERSIONS.values())))
def test_modules_on_older_target_pythons(release, emulator_fleet, run_playbook_with):
    versions = sorted(version for version, oldest in OLD_TARGET_PYTHON_VERSIONS.items() if oldest == release)
    controller = matrix_controller(release)

    def run(playbook, inventory):
        return run_playbook_with(controller, playbook, inventory=inventory, extra_args=["--forks", "8"])

    fleet, result = fleet_run(versions, emulator_fleet, run)
    check_every_host(versions, fleet, result)
