# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# A simulated fleet for the fleet tests and the benchmark: per-host IMDS
# scenarios, inventories pointing each host at its own emulated IMDS, direct
# readers of the jsonfile and redis fact caches, and a throw-away redis-server.
#
# The fleet looks like a web tier behind one Standard load balancer:
#
#   host i (1-based)   private IP 10.20.0.(i+3) (next /24 after 252 hosts)
#   web frontend       20.50.0.1, .2 or .3 (host i gets number (i-1) % 3 + 1)
#                        tcp 80  -> backend 8080 (odd i) or 8081 (even i)
#                        tcp 443 -> backend 8443
#   SSH NAT frontend   20.50.0.100, tcp 50000+i -> 22
#   outbound frontend  20.50.1.1

import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

# The fleet tests' name for the shared environment builder.
from .paths import EXAMPLES_DIR, LOADBALANCER_PATH

EXAMPLES = EXAMPLES_DIR / "fleet"

WEB_FRONTENDS = ("20.50.0.1", "20.50.0.2", "20.50.0.3")
NAT_FRONTEND = "20.50.0.100"
OUTBOUND_FRONTEND = "20.50.1.1"
HTTP_BACKEND_PORTS = (8080, 8081)
HTTPS_BACKEND_PORT = 8443
SSH_PORT = 22
NAT_PORT_BASE = 50000

REDIS_START_TIMEOUT = 15.0
REDIS_STOP_TIMEOUT = 10.0


# --------------------------------------------------------------------------- scenarios

def host_name(index):
    """vm01, vm02, ... (three digits from 100 hosts on)."""
    return "vm%02d" % index


def private_ip(index):
    """The private IP of host index: 10.20.0.4 for host 1, counting up."""
    if index < 1:
        raise ValueError("host indexes start at 1")
    return str(ipaddress.IPv4Address("10.20.0.3") + index)


def web_frontend(index):
    return WEB_FRONTENDS[(index - 1) % len(WEB_FRONTENDS)]


def http_backend_port(index):
    return HTTP_BACKEND_PORTS[(index - 1) % len(HTTP_BACKEND_PORTS)]


def loadbalancer_document(index, http_port=None):
    """What /metadata/loadbalancer answers on host index (the IMDS JSON, outer key included)."""
    address = private_ip(index)
    frontend = web_frontend(index)
    http_port = http_backend_port(index) if http_port is None else http_port
    return {
        "loadbalancer": {
            "publicIpAddresses": [],
            "inboundRules": [
                {"frontendIpAddress": frontend, "protocol": "tcp", "frontendPort": 80,
                 "backendPort": http_port, "privateIpAddress": address},
                {"frontendIpAddress": frontend, "protocol": "tcp", "frontendPort": 443,
                 "backendPort": HTTPS_BACKEND_PORT, "privateIpAddress": address},
                {"frontendIpAddress": NAT_FRONTEND, "protocol": "tcp", "frontendPort": NAT_PORT_BASE + index,
                 "backendPort": SSH_PORT, "privateIpAddress": address},
            ],
            "outboundRules": [
                {"frontendIpAddress": OUTBOUND_FRONTEND, "privateIpAddress": address},
            ],
        }
    }


def instance_document(index):
    """A small /metadata/instance answer that agrees with the load balancer answer."""
    name = host_name(index)
    return {
        "compute": {
            "location": "westeurope",
            "name": name,
            "resourceGroupName": "rg-fleet",
            "subscriptionId": "00000000-0000-4000-8000-00000000f1ee",
            "vmId": "00000000-0000-4000-8000-%012d" % index,
            "vmScaleSetName": "vmss-web",
            "zone": str((index - 1) % 3 + 1),
            "tagsList": [],
        },
        "network": {
            "interface": [{
                "ipv4": {"ipAddress": [{"privateIpAddress": private_ip(index), "publicIpAddress": ""}],
                         "subnet": [{"address": "10.20.0.0", "prefix": "16"}]},
                "ipv6": {"ipAddress": []},
                "macAddress": "000D3A%06X" % index,
            }]
        },
    }


def host_scenario(index, http_port=None, faults=None):
    """The emulator scenario of host index; http_port replaces its port-80 backend port."""
    scenario = {
        "description": "Fleet host %s: web tier behind a Standard load balancer." % host_name(index),
        "loadbalancer": loadbalancer_document(index, http_port),
        "instance": instance_document(index),
    }
    if faults:
        scenario["faults"] = list(faults)
    return scenario


def fleet_scenarios(count):
    """{host name: scenario} for hosts 1..count."""
    if count < 1:
        raise ValueError("a fleet has at least one host")
    return {host_name(index): host_scenario(index) for index in range(1, count + 1)}


def unavailable_fault(seconds=60):
    """A fault that answers 503 to every load balancer request for a while."""
    return {"status": 503, "seconds": seconds, "path": "/metadata/loadbalancer"}


# What the facts of a host must say, worked out from the raw IMDS document
# with nothing but the documented contract (lists deduplicated and sorted).

def expected_summary(document):
    """frontend_ips, private_ips, backend_ports and (frontend, port, backend) listeners of an IMDS document."""
    body = document["loadbalancer"]
    inbound = body.get("inboundRules") or []
    frontends = {rule["frontendIpAddress"] for rule in inbound}
    frontends |= {rule["frontendIpAddress"] for rule in body.get("outboundRules") or []}
    frontends |= {rule["frontendIpAddress"] for rule in body.get("publicIpAddresses") or []}
    privates = {rule["privateIpAddress"] for rule in inbound}
    privates |= {rule["privateIpAddress"] for rule in body.get("outboundRules") or []}
    return {
        "frontend_ips": sorted(frontends, key=ipaddress.ip_address),
        "private_ips": sorted(privates, key=ipaddress.ip_address),
        "backend_ports": sorted({int(rule["backendPort"]) for rule in inbound} - {0}),
        "listeners": sorted((rule["frontendIpAddress"], int(rule["frontendPort"]), int(rule["backendPort"]))
                            for rule in inbound),
    }


def facts_summary(facts):
    """The same summary, read from azure_loadbalancer facts."""
    return {
        "frontend_ips": list(facts["frontend_ips"]),
        "private_ips": list(facts["private_ips"]),
        "backend_ports": list(facts["backend_ports"]),
        "listeners": sorted((rule["frontend_ip_address"], rule["frontend_port"], rule["backend_port"])
                            for rule in facts["inbound_rules"]),
    }


def safe_group_suffix(value):
    """How the constructed config sanitises a value for a group name."""
    return re.sub(r"[^A-Za-z0-9_]", "_", str(value))


# --------------------------------------------------------------------------- inventories

def fleet_inventory(endpoints, host_vars=None):
    """A YAML inventory structure: every host local, each with its own imds_endpoint."""
    hosts = {}
    for name, endpoint in sorted(endpoints.items()):
        hosts[name] = dict({"imds_endpoint": endpoint}, **(host_vars or {}).get(name, {}))
    return {
        "all": {
            "hosts": hosts,
            "vars": {
                "ansible_connection": "local",
                # Every host runs modules with the controller's Python: no
                # interpreter discovery per host.
                "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            },
        }
    }


def write_json(path, document):
    path = Path(path)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- ansible commands

def tool(name):
    """A command from the virtual environment of the running Python, else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError("%s not found next to %s or on PATH; run tools/setup.sh" % (name, sys.executable))
    return found


# --------------------------------------------------------------------------- fact caches

def _unwrap(document):
    """Facts from a cache record; ansible-core 2.19 wraps them as {"__payload__": "<json>"}."""
    if isinstance(document, dict) and set(document) == {"__payload__"}:
        return json.loads(document["__payload__"])
    return document


def _cache_key_pattern(prefix, host):
    # ansible-core 2.19 adds a schema marker such as "s1_" before the host name.
    return re.compile(r"^%s(?:s\d+_)?%s$" % (re.escape(prefix), re.escape(host)))


def jsonfile_cache_path(directory, host, prefix=""):
    """The file the jsonfile cache keeps host's facts in, or None."""
    pattern = _cache_key_pattern(prefix, host)
    matches = [path for path in Path(directory).iterdir() if pattern.match(path.name)] if Path(directory).is_dir() else []
    if len(matches) > 1:
        raise AssertionError("more than one cache file for %s: %s" % (host, sorted(path.name for path in matches)))
    return matches[0] if matches else None


def read_jsonfile_cache(directory, host, prefix=""):
    """host's cached facts as a dict, straight from the file; None when there is no file."""
    path = jsonfile_cache_path(directory, host, prefix)
    if path is None:
        return None
    return _unwrap(json.loads(path.read_text(encoding="utf-8")))


def redis_cache_key(client, host, prefix):
    """The redis key that holds host's facts, or None."""
    pattern = _cache_key_pattern(prefix, host)
    matches = [key for key in client.scan_iter(match=prefix + "*") if pattern.match(key.decode("utf-8"))]
    if len(matches) > 1:
        raise AssertionError("more than one redis key for %s: %s" % (host, sorted(matches)))
    return matches[0] if matches else None


def read_redis_cache(client, host, prefix):
    key = redis_cache_key(client, host, prefix)
    if key is None:
        return None
    return _unwrap(json.loads(client.get(key)))


def raw_redis_cache(client, host, prefix):
    """The exact bytes redis holds for host's facts."""
    key = redis_cache_key(client, host, prefix)
    return None if key is None else client.get(key)


# --------------------------------------------------------------------------- redis-server

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of its own on 127.0.0.1: no persistence, not daemonized, stopped by its PID."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.port = None
        self.process = None
        self.log_path = self.workdir / "redis.log"

    @property
    def connection(self):
        """The fact_caching_connection string for community.general.redis: host:port:db."""
        return "127.0.0.1:%d:0" % self.port

    def client(self):
        import redis  # from requirements-dev.txt; only the redis tests need it
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, socket_timeout=5)

    def start(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; tools/setup.sh installs it (Debian package redis-server)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(5):
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
                     "--daemonize", "no", "--dir", str(self.workdir), "--protected-mode", "yes"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            if self._wait_until_ready():
                return self
            self.stop()  # the port was taken in between: try another one
        raise RuntimeError("redis-server did not start; log:\n" + self.log_path.read_text(errors="replace"))

    def _wait_until_ready(self):
        deadline = time.monotonic() + REDIS_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(64).startswith(b"+PONG"):
                        return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=REDIS_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=REDIS_STOP_TIMEOUT)


# --------------------------------------------------------------------------- cache back ends for tests

class JsonfileCache:
    """The jsonfile cache that examples/fleet/ansible.cfg configures (.facts next to it)."""

    name = "jsonfile"

    def __init__(self, directory):
        self.directory = Path(directory)

    @property
    def environment(self):
        return {}  # the example ansible.cfg says it all

    def facts(self, host):
        return read_jsonfile_cache(self.directory, host)

    def raw(self, host):
        """(bytes, mtime in ns) of host's cache file, or None."""
        path = jsonfile_cache_path(self.directory, host)
        if path is None:
            return None
        return path.read_bytes(), path.stat().st_mtime_ns

    def age(self, host, seconds):
        """Make host's cached facts look seconds older than they are."""
        path = jsonfile_cache_path(self.directory, host)
        stat = path.stat()
        os.utime(path, (stat.st_atime - seconds, stat.st_mtime - seconds))


class RedisCache:
    """community.general.redis on a RedisServer, replacing the example's jsonfile through the environment."""

    name = "redis"
    prefix = "imds_azure_facts_"

    def __init__(self, server):
        self.server = server
        self.client = server.client()
        self.client.flushdb()

    @property
    def environment(self):
        return {
            "ANSIBLE_CACHE_PLUGIN": "community.general.redis",
            "ANSIBLE_CACHE_PLUGIN_CONNECTION": self.server.connection,
            "ANSIBLE_CACHE_PLUGIN_PREFIX": self.prefix,
        }

    def facts(self, host):
        return read_redis_cache(self.client, host, self.prefix)

    def raw(self, host):
        return raw_redis_cache(self.client, host, self.prefix)


# --------------------------------------------------------------------------- the examples, run on a fleet

def copy_examples(target):
    """A copy of examples/fleet: its ansible.cfg then keeps the jsonfile cache in .facts next to it."""
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".facts", "reports"))
    return Path(target)


class Fleet:
    """Emulated VMs, their inventory, and the example playbooks run against them with one cache."""

    def __init__(self, run_playbook, emulator_fleet, workspace, cache, scenarios):
        self.names = sorted(scenarios)
        self.emulators = emulator_fleet(scenarios)
        self.inventory = fleet_inventory(self.emulators.endpoints)
        self.workspace = workspace
        self.cache = cache
        self._run_playbook = run_playbook
        self._written = 0

    @property
    def environment(self):
        """The workspace's ansible.cfg, with the cache's own settings on top."""
        environment = {"ANSIBLE_CONFIG": str(self.workspace / "ansible.cfg")}
        environment.update(self.cache.environment)
        return environment

    def run(self, playbook, extra_vars=None, extra_args=(), env=None, inventory=None):
        """Run an example playbook (a file name in the workspace) or playbook text.

        Playbook text is written into the workspace too, so that the
        example's group_vars/ apply to it as they do to the examples.
        """
        if "\n" in playbook:
            self._written += 1
            path = self.workspace / ("test-play-%d.yml" % self._written)
            path.write_text(playbook, encoding="utf-8")
            playbook = path
        else:
            playbook = self.workspace / playbook
        environment = dict(self.environment, **(env or {}))
        return self._run_playbook(playbook, inventory=inventory or self.inventory, extra_vars=extra_vars,
                                  extra_args=extra_args, env=environment)

    def loadbalancer_requests(self, name):
        return [entry for entry in self.emulators[name].requests() if entry["path"].startswith(LOADBALANCER_PATH)]

    def request_counts(self):
        return {name: len(self.loadbalancer_requests(name)) for name in self.names}

    def cached_facts(self, name):
        facts = self.cache.facts(name)
        assert facts is not None, (
            "no %s cache entry for %s after a successful gather: the facts went to the memory cache "
            "(is the cache configured?)" % (self.cache.name, name))
        assert "azure_loadbalancer" in facts, "the cache entry of %s has no azure_loadbalancer: %s" % (name, sorted(facts))
        return facts["azure_loadbalancer"]

    def report_lines(self, name):
        text = (self.workspace / "reports" / (name + ".txt")).read_text(encoding="utf-8")
        return [line for line in text.splitlines() if line and not line.startswith("#")]
