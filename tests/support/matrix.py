# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Running playbooks with the controllers of the version matrix
# (support.ansible_env.matrix_controllers()): the collection built and installed by
# each release's own ansible-galaxy, and ansible-playbook from that release,
# reported through the ansible.posix.json callback like the run_playbook fixture.
#
#   matrix_collection  (session) matrix_collection(controller) -> CollectionInstall
#   run_playbook_with  (function) run_playbook_with(controller, playbook, ...) -> PlaybookResult
#   one_rule_vm_scenario(port): an emulator scenario with one TCP rule to backend port ``port``
#   nginx_private_paths(directory): role variables that keep nginx_frontends' files in directory
#   nginx_check(binary, conf_path): nginx -t on a configuration, (exit code, output)

import subprocess

import pytest

from .ansible_env import link_json_callback_collection
from .playbook import build_and_install, run_ansible_playbook

PLAYBOOK_TIMEOUT = 300.0
# What ansible-galaxy and ansible-playbook print when meta/runtime.yml excludes the running release.
SUPPORTED_WARNING = "does not support Ansible version"
VM_PRIVATE_IP = "10.1.0.4"


def install_collection(controller, workdir):
    """Build the checkout with the controller's ansible-galaxy and install the tarball, as its users would."""
    install, outputs = build_and_install(workdir, controller.tool("ansible-galaxy"), tools_bin=controller.bin_dir,
                                         what="ansible-core " + controller.release)
    for output in outputs:
        assert SUPPORTED_WARNING not in output.stdout + output.stderr, output.stdout + output.stderr
    link_json_callback_collection(install.path)
    return install


@pytest.fixture(scope="session")
def matrix_collection(tmp_path_factory):
    """Factory: ``matrix_collection(controller)`` -> CollectionInstall built and installed with that release (once)."""
    installs = {}

    def get(controller):
        if controller.release not in installs:
            workdir = tmp_path_factory.mktemp("collection-" + controller.release)
            installs[controller.release] = install_collection(controller, workdir)
        return installs[controller.release]

    return get


@pytest.fixture
def run_playbook_with(matrix_collection, tmp_path_factory):
    """``run_playbook_with(controller, playbook, inventory=None, extra_vars=None, extra_args=())`` -> PlaybookResult."""

    def run(controller, playbook, inventory=None, extra_vars=None, extra_args=()):
        return run_ansible_playbook(controller.tool("ansible-playbook"), matrix_collection(controller).path,
                                    tmp_path_factory.mktemp("playbook-" + controller.release), playbook, inventory,
                                    extra_vars, extra_args=extra_args, timeout=PLAYBOOK_TIMEOUT,
                                    tools_bin=controller.bin_dir, what="ansible-playbook " + controller.release)

    return run


def one_rule_vm_scenario(port):
    """A VM behind a Standard Load Balancer with one TCP rule to backend port ``port``.

    Its private IP is not on this machine: with nginx_frontends_listen_all_addresses (see
    nginx_private_paths) nginx listens on ``*:port``, which nginx -t can bind here.
    """
    rule = {"frontendIpAddress": "50.0.0.1", "privateIpAddress": VM_PRIVATE_IP, "protocol": "tcp",
            "frontendPort": 80, "backendPort": port}
    public = {"frontendIpAddress": "51.0.0.1", "privateIpAddress": VM_PRIVATE_IP}
    return {"description": "one TCP rule, for the version matrix and ansible-runner tests",
            "loadbalancer": {"loadbalancer": {"publicIpAddresses": [public], "inboundRules": [rule], "outboundRules": []}}}


def nginx_private_paths(directory):
    """nginx_frontends variables (documented in its argument spec) that keep the role's files in directory.

    nginx listens on every address of this machine, on the rules' backend ports.
    """
    return {
        "nginx_frontends_listen_all_addresses": True,
        "nginx_frontends_tls_dir": str(directory / "tls"),
        "nginx_frontends_conf_path": str(directory / "nginx.conf"),
        "nginx_frontends_pid_path": str(directory / "nginx.pid"),
        "nginx_frontends_error_log": str(directory / "error.log"),
        "nginx_frontends_access_log": str(directory / "access.log"),
        "nginx_frontends_http_includes": [],
    }


def nginx_check(binary, conf_path):
    """``nginx -t`` on a configuration file: (exit code, output)."""
    done = subprocess.run([binary, "-t", "-c", str(conf_path)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr
