# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The modules with their defaults, on the real IMDS address, end to end.
#
# Each test makes its own network namespace. In the first, 169.254.169.254 is
# on the namespace's loopback interface and the emulator listens there on
# port 80; ansible-playbook runs inside the same namespace with no endpoint
# option, as on an Azure VM. (This machine has no DMI, so detection falls
# through to the connection attempt.) The others have no IMDS at all: the
# modules must say "not an Azure VM" at once.
#
# Nothing here ever sends a packet to 169.254.169.254 from the machine's own
# network namespace: every command that talks to it runs inside a namespace
# this test created, and each namespace is checked to be a different one
# before it is used.

import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys

import pytest

from support.ansible_env import MANAGED_HOST_PYTHON, ansible_environment, tool_path
from support.emulator import EmulatorProcess
from support.faults import bundled_scenario, module_seconds, timed_interpreters, traceback_lines
from support.playbook import PlaybookResult

IMDS_ADDRESS = "169.254.169.254"
COMMAND_TIMEOUT = 120.0
# The module's own answer off Azure must come at once; this is generous.
NOT_AZURE_BOUND = 5.0
TIMEOUT = 5.0  # the module default, left in force

PLAYBOOK = """
- name: Read IMDS with the modules' defaults
  hosts: all
  gather_facts: false
  tasks:
    - name: Read the load balancer facts
      imds.azure.loadbalancer_facts:

    - name: Read the compute metadata
      imds.azure.metadata_info:
        path: instance/compute
      register: compute
      ignore_errors: true

    - name: Read the api versions
      imds.azure.metadata_info:
        path: versions
      ignore_errors: true
"""
INVENTORY = "[all]\nlocalhost ansible_connection=local ansible_python_interpreter=%s\n"


class NetworkNamespace:
    """A network namespace of this test's own, removed with everything started in it."""

    def __init__(self):
        self.name = "imdsazure-" + secrets.token_hex(4)
        self._processes = []
        self._check(["ip", "netns", "add", self.name])
        try:
            own = os.readlink("/proc/self/ns/net")
            inside = self.run(["readlink", "/proc/self/ns/net"]).stdout.strip()
            if not inside or inside == own:
                raise AssertionError("ip netns exec %s did not enter a new network namespace" % self.name)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _check(command):
        done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)
        if done.returncode != 0:
            raise OSError("%s failed (%d): %s" % (" ".join(command), done.returncode, done.stderr.strip()))
        return done

    def ip(self, *arguments):
        return self._check(["ip", "-n", self.name] + list(arguments))

    def command(self, command):
        return ["ip", "netns", "exec", self.name] + list(command)

    def run(self, command, env=None, cwd=None):
        return subprocess.run(self.command(command), env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT, check=False)

    def track(self, process):
        """Stop ``process`` (started inside the namespace) when the namespace is closed."""
        self._processes.append(process)

    def close(self):
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", self.name], stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=COMMAND_TIMEOUT, check=False)


@pytest.fixture
def network_namespace():
    """Factory: network_namespace() makes a namespace; all are deleted after the test."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root; this test runs as uid %d" % os.geteuid())
    if shutil.which("ip") is None:
        pytest.skip("the ip command (iproute2) is not installed, so no network namespace can be made")
    made = []

    def make():
        try:
            namespace = NetworkNamespace()
        except OSError as exc:
            pytest.skip("cannot make a network namespace here: %s" % exc)
        made.append(namespace)
        return namespace

    yield make
    for namespace in made:
        namespace.close()
    leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout
    assert not any(namespace.name in leftover for namespace in made), leftover


def run_playbook_inside(namespace, collection_install, workdir, playbook=PLAYBOOK):
    """ansible-playbook with the installed collection, run inside the namespace."""
    workdir.mkdir(parents=True, exist_ok=True)
    interpreter = timed_interpreters(workdir / "times", ["localhost"], MANAGED_HOST_PYTHON)["localhost"]
    (workdir / "playbook.yml").write_text(playbook, encoding="utf-8")
    (workdir / "inventory.ini").write_text(INVENTORY % interpreter, encoding="utf-8")
    env = ansible_environment(workdir, collection_install.path, {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
    command = [tool_path("ansible-playbook"), "-i", str(workdir / "inventory.ini"), str(workdir / "playbook.yml")]
    done = namespace.run(command, env=env, cwd=str(workdir))
    return PlaybookResult(namespace.command(command), done.returncode, done.stdout, done.stderr)


def start_emulator_inside(namespace, workdir, scenario="documented", host=IMDS_ADDRESS, port=80):
    """The emulator on host:port (default 169.254.169.254:80) inside the namespace; returns once it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    emulator = EmulatorProcess(["--scenario", scenario, "--host", host, "--port", str(port)], workdir,
                               prefix=namespace.command([]))
    namespace.track(emulator.process)
    assert emulator.endpoints == {"default": "http://%s:%d" % (host, port)}


def emulator_requests_inside(namespace, host=IMDS_ADDRESS, port=80):
    """The emulator's request log, fetched from inside the namespace."""
    fetch = ("import http.client, json; c = http.client.HTTPConnection(%r, %d, timeout=10); "
             "c.request('GET', '/__emulator__/requests'); print(c.getresponse().read().decode())" % (host, port))
    done = namespace.run([sys.executable, "-c", fetch])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["requests"]


def expected_facts(document, api_version):
    """The azure_loadbalancer facts the facts contract promises for a plain, well-formed document."""
    body = document["loadbalancer"]

    def address(text):
        return str(ipaddress.ip_address(text))

    def pair(entry):
        return {"frontend_ip_address": address(entry["frontendIpAddress"]),
                "private_ip_address": address(entry["privateIpAddress"])}

    def rule(entry):
        return dict(pair(entry), protocol=entry["protocol"].lower(), frontend_port=int(entry["frontendPort"]),
                    backend_port=int(entry["backendPort"]), all_ports=int(entry["frontendPort"]) == 0)

    def ordered(addresses):
        return sorted(set(addresses), key=lambda text: (ipaddress.ip_address(text).version, ipaddress.ip_address(text)))

    public = [pair(entry) for entry in body["publicIpAddresses"]]
    inbound = [rule(entry) for entry in body["inboundRules"]]
    outbound = [pair(entry) for entry in body["outboundRules"]]
    every = public + inbound + outbound
    by_private, by_port = {}, {}
    for entry in inbound:
        by_private.setdefault(entry["private_ip_address"], []).append(entry)
        by_port.setdefault(str(entry["backend_port"]), []).append(entry)
    return {
        "available": True,
        "api_version": api_version,
        "public_ip_addresses": public,
        "inbound_rules": inbound,
        "outbound_rules": outbound,
        "tunnel_interfaces": [],
        "frontend_ips": ordered(entry["frontend_ip_address"] for entry in every),
        "private_ips": ordered(entry["private_ip_address"] for entry in every),
        "backend_ports": sorted(set(entry["backend_port"] for entry in inbound) - {0}),
        "inbound_rules_by_private_ip": by_private,
        "inbound_rules_by_backend_port": by_port,
    }


def test_default_endpoint_works_on_the_real_address(network_namespace, collection_install, tmp_path):
    namespace = network_namespace()
    namespace.ip("link", "set", "lo", "up")
    namespace.ip("address", "add", IMDS_ADDRESS + "/32", "dev", "lo")
    start_emulator_inside(namespace, tmp_path / "emulator")

    result = run_playbook_inside(namespace, collection_install, tmp_path / "ansible")
    result.assert_ok()
    assert traceback_lines(result) == []

    scenario = bundled_scenario("documented")
    facts = result.task("Read the load balancer facts")["ansible_facts"]["azure_loadbalancer"]
    assert facts == expected_facts(scenario["loadbalancer"], "2020-10-01")
    assert result.task("Read the compute metadata")["metadata"] == scenario["instance"]["compute"]
    assert "2020-10-01" in result.task("Read the api versions")["metadata"]["apiVersions"]
    seconds = module_seconds(tmp_path / "ansible" / "times", "localhost")
    print("\non the real address: module processes took %s s (loadbalancer_facts, metadata_info x2)"
          % ", ".join("%.2f" % value for value in seconds))

    requests = emulator_requests_inside(namespace)
    assert [(entry["path"], entry["status"]) for entry in requests] == [
        ("/metadata/loadbalancer", 200), ("/metadata/instance/compute", 200), ("/metadata/versions", 200)]
    for entry in requests:
        assert entry["headers"].get("Metadata") == "true"
        assert entry["headers"].get("Host") == IMDS_ADDRESS
        assert "X-Forwarded-For" not in entry["headers"]


# How each namespace without IMDS is set up: (ip commands, what connect() sees).
NO_IMDS = {
    # A fresh namespace: loopback down, no route at all.
    "no-network": ([], "network unreachable"),
    # Loopback up, nothing for 169.254.169.254.
    "no-route": ([("link", "set", "lo", "up")], "network unreachable"),
    # Hosts that fence off metadata addresses with a blackhole route.
    "blackhole-route": ([("link", "set", "lo", "up"), ("route", "add", "blackhole", IMDS_ADDRESS + "/32")],
                        "invalid argument"),
    # ... or with a prohibit route.
    "prohibit-route": ([("link", "set", "lo", "up"), ("route", "add", "prohibit", IMDS_ADDRESS + "/32")],
                       "permission denied"),
}


@pytest.mark.parametrize("setup", sorted(NO_IMDS))
def test_without_imds_the_default_endpoint_says_not_azure_at_once(network_namespace, collection_install, tmp_path,
                                                                  setup):
    namespace = network_namespace()
    for arguments in NO_IMDS[setup][0]:
        namespace.ip(*arguments)

    result = run_playbook_inside(namespace, collection_install, tmp_path / "ansible")
    assert traceback_lines(result) == []
    gathered = result.task("Read the load balancer facts")
    assert not gathered.get("failed"), "%s: %s" % (setup, gathered.get("msg"))
    facts = gathered["ansible_facts"]["azure_loadbalancer"]
    assert facts["available"] is False
    assert facts["reason"] == "not_azure"
    assert "not an Azure VM" in facts["message"]
    for key in ("public_ip_addresses", "inbound_rules", "outbound_rules", "frontend_ips", "private_ips",
                "backend_ports"):
        assert facts[key] == [], key
    assert facts["inbound_rules_by_private_ip"] == {} and facts["inbound_rules_by_backend_port"] == {}

    seconds = module_seconds(tmp_path / "ansible" / "times", "localhost")
    print("\n%s: loadbalancer_facts answered not_azure in %.2f s (the module process; connect() sees %s)" % (
        setup, seconds[0], NO_IMDS[setup][1]))
    assert seconds[0] < NOT_AZURE_BOUND

    info = result.task("Read the compute metadata")
    assert info.get("failed") is True
    assert info.get("error_code") == "not_azure"
    assert "not an Azure VM" in info["msg"]
    assert "metadata" not in info
    assert result.task("Read the api versions").get("error_code") == "not_azure"


# A play that points the action group at the emulator, and a role run with
# none of its own IMDS options: the role's modules must take the play's
# endpoint. The namespace has loopback only, so a module that ignored it would
# find no route to 169.254.169.254 (not_azure), never the real address.
LOOPBACK_EMULATOR_PORT = 8080
MODULE_DEFAULTS_PLAYBOOK = """
- name: Run a role of the collection with the endpoint from the play's module_defaults
  hosts: all
  gather_facts: false
  module_defaults:
    group/imds.azure.imds:
      endpoint: http://127.0.0.1:%(port)d
      retry_timeout: 0
  roles:
    - role: imds.azure.%(role)s
      vars: %(vars)s
"""
ROLE_RUNS = {
    # A VM in no Standard load balancer: the role leaves nginx alone, after reading the emulator.
    "nginx_frontends": ("no-loadbalancer", "/metadata/loadbalancer", {}),
    # No scheduled events: the role reads them once and does nothing else.
    "maintenance_drain": ("documented", "/metadata/scheduledevents",
                          {"maintenance_drain_vm_name": "vm-web-01", "maintenance_drain_state_dir": "{state_dir}"}),
}


@pytest.mark.parametrize("role", sorted(ROLE_RUNS))
def test_roles_take_the_endpoint_from_the_plays_module_defaults(network_namespace, collection_install, tmp_path,
                                                                role):
    scenario, path, role_vars = ROLE_RUNS[role]
    namespace = network_namespace()
    namespace.ip("link", "set", "lo", "up")
    start_emulator_inside(namespace, tmp_path / "emulator", scenario, "127.0.0.1", LOOPBACK_EMULATOR_PORT)
    role_vars = {name: value.format(state_dir=tmp_path / "state") for name, value in role_vars.items()}
    playbook = MODULE_DEFAULTS_PLAYBOOK % {"port": LOOPBACK_EMULATOR_PORT, "role": role, "vars": json.dumps(role_vars)}

    result = run_playbook_inside(namespace, collection_install, tmp_path / "ansible", playbook)
    result.assert_ok()
    assert traceback_lines(result) == []
    requests = emulator_requests_inside(namespace, "127.0.0.1", LOOPBACK_EMULATOR_PORT)
    assert [(entry["method"], entry["path"]) for entry in requests] == [("GET", path)], requests
