# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The version matrix: every ansible-core release the collection supports
# (meta/runtime.yml), each from its own virtual environment with a controller
# Python it supports (tests/matrix/requirements-X.Y.txt, built by
# tools/setup.sh). With each release the collection is built and installed by
# that release's ansible-galaxy and a smoke playbook runs against the IMDS
# emulator: the facts module through gather_facts and as a task,
# metadata_info, and the nginx_frontends role writing a configuration that
# nginx -t accepts.

from pathlib import Path

import pytest

from support.ansible_env import matrix_controllers
from support.matrix import SUPPORTED_WARNING, VM_PRIVATE_IP, nginx_check, nginx_private_paths, one_rule_vm_scenario


CONTROLLERS = matrix_controllers()


SMOKE_PLAYBOOK = """
- name: imds.azure smoke test
  hosts: localhost
  gather_facts: true
  vars:
    ansible_facts_modules: [smart, imds.azure.loadbalancer_facts]
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{ imds_endpoint }}"
      retry_timeout: 5
  tasks:
    - name: Keep what gather_facts set
      ansible.builtin.set_fact:
        gathered_by_gather_facts: "{{ ansible_facts.azure_loadbalancer }}"

    - name: Read the load balancer metadata as a task
      imds.azure.loadbalancer_facts:
      register: as_task

    - name: Read the compute metadata
      imds.azure.metadata_info:
        path: instance/compute
      register: compute

    - name: Render nginx for the frontends
      ansible.builtin.include_role:
        name: imds.azure.nginx_frontends

    - name: Report
      ansible.builtin.debug:
        msg:
          ansible_core: "{{ ansible_version.full }}"
          controller_python: "{{ ansible_playbook_python }}"
          from_gather_facts: "{{ gathered_by_gather_facts }}"
          from_task: "{{ as_task.ansible_facts.azure_loadbalancer }}"
          vm_name: "{{ compute.metadata.name }}"
"""


def test_matrix_covers_every_supported_release():
    # meta/runtime.yml says >=2.16.0; the matrix must start there and leave no minor release out.
    releases = [tuple(int(part) for part in controller.release.split(".")) for controller in CONTROLLERS]
    assert releases[0] == (2, 16)
    assert releases == [(2, minor) for minor in range(16, releases[-1][1] + 1)]
    assert releases[-1] >= (2, 21)


@pytest.mark.parametrize("controller", CONTROLLERS, ids=[controller.release for controller in CONTROLLERS])
def test_smoke_playbook(controller, run_playbook_with, emulator, nginx_binary, free_ports, tmp_path_factory):
    (port,) = free_ports(1)
    imds = emulator(one_rule_vm_scenario(port))
    nginx_dir = tmp_path_factory.mktemp("nginx-" + controller.release)
    conf_path = nginx_dir / "nginx.conf"
    role_vars = dict(nginx_private_paths(nginx_dir), imds_endpoint=imds.endpoint,
                     nginx_frontends_imds_endpoint=imds.endpoint)
    result = run_playbook_with(controller, SMOKE_PLAYBOOK, extra_vars=role_vars).assert_ok()
    assert SUPPORTED_WARNING not in result.stdout + result.stderr, result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.describe()

    report = result.task("Report")["msg"]
    assert report["ansible_core"] == controller.pinned
    assert Path(report["controller_python"]).parent.resolve() == controller.bin_dir.resolve(), report["controller_python"]
    for facts in (report["from_gather_facts"], report["from_task"]):
        assert facts["available"] is True
        assert facts["frontend_ips"] == ["50.0.0.1", "51.0.0.1"]
        assert facts["private_ips"] == [VM_PRIVATE_IP]
        assert facts["backend_ports"] == [port]
    assert report["vm_name"] == imds.scenario()["instance"]["compute"]["name"]
    load_balancer_reads = [entry for entry in imds.requests() if entry["path"] == "/metadata/loadbalancer"]
    assert len(load_balancer_reads) == 2  # gather_facts, then the task; the role uses the facts it finds

    config = conf_path.read_text(encoding="utf-8")
    assert f"listen *:{port}" in config
    rc, output = nginx_check(nginx_binary, conf_path)
    assert rc == 0, output
