# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Helpers for the fault, load, security and network namespace tests:
# scenarios with faults, listeners that misbehave in ways the emulator does
# not (refuse, never accept, drip headers, stream without end), a trap server
# that records anything sent to it, per-host task durations from the JSON
# report, and a few measurements over the emulator's request log.

import bisect
import copy
import json
import shlex
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .paths import SCENARIO_DIR


# What a trap answers: a well-formed load balancer document with addresses
# that appear in no scenario, so facts built from it would stand out.
POISON_FRONTEND = "203.0.113.66"
POISON_DOCUMENT = {
    "loadbalancer": {
        "publicIpAddresses": [{"frontendIpAddress": POISON_FRONTEND, "privateIpAddress": "10.9.9.9"}],
        "inboundRules": [{"frontendIpAddress": POISON_FRONTEND, "protocol": "tcp", "frontendPort": 80,
                          "backendPort": 22, "privateIpAddress": "10.9.9.9"}],
        "outboundRules": [],
    }
}

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


# --------------------------------------------------------------------------- scenarios

def bundled_scenario(name):
    """A bundled scenario of tools/scenarios/ as a dict."""
    return json.loads((SCENARIO_DIR / (name + ".json")).read_text(encoding="utf-8"))


def with_faults(scenario, *faults):
    """A copy of scenario whose faults are exactly the ones given."""
    changed = copy.deepcopy(scenario)
    changed["faults"] = list(faults)
    changed["description"] = "%s; faults: %s" % (scenario.get("description", ""), json.dumps(list(faults)))
    return changed


# --------------------------------------------------------------------------- module runs

LOADBALANCER_TASK = "Read the load balancer facts"
INFO_TASK = "Read the instance metadata"
REPORT_TASK = "Report the load balancer facts after the read"

# One play for every host of a run; host variables choose the module (imds_module), its endpoint and
# options, and for metadata_info the path and format.
MODULES_PLAYBOOK = """
- name: Read IMDS while it misbehaves
  hosts: all
  gather_facts: false
  strategy: free
  tasks:
    - name: %(lb)s
      imds.azure.loadbalancer_facts:
        endpoint: "{{ imds_endpoint }}"
        timeout: "{{ imds_timeout | default(omit) }}"
        retry_timeout: "{{ imds_retry_timeout | default(omit) }}"
      register: gathered
      ignore_errors: true
      when: imds_module == 'loadbalancer_facts'

    - name: %(info)s
      imds.azure.metadata_info:
        endpoint: "{{ imds_endpoint }}"
        path: "{{ imds_path | default('instance/compute') }}"
        format: "{{ imds_format | default('json') }}"
        timeout: "{{ imds_timeout | default(omit) }}"
        retry_timeout: "{{ imds_retry_timeout | default(omit) }}"
      register: read
      ignore_errors: true
      when: imds_module == 'metadata_info'

    - name: %(report)s
      ansible.builtin.debug:
        msg: "{{ ansible_facts.azure_loadbalancer | default('absent') }}"
""" % {"lb": LOADBALANCER_TASK, "info": INFO_TASK, "report": REPORT_TASK}


# --------------------------------------------------------------------------- nginx_frontends runs

ROLE_PLAYBOOK = """
- name: Configure nginx from the load balancer facts
  hosts: all
  gather_facts: false
  roles:
    - role: imds.azure.nginx_frontends
"""
ROLE_GATHER_TASK = "Gather the Azure load balancer facts"
ROLE_WRITE_TASK = "Write the nginx configuration"


def role_host_vars(endpoint, directory, timeout, retry_timeout):
    """Host variables for one host of a role run: facts read afresh, files in ``directory``, nothing on ``lo``."""
    return {
        "ansible_connection": "local",
        "nginx_frontends_refresh_facts": True,
        "nginx_frontends_imds_endpoint": endpoint,
        "nginx_frontends_imds_timeout": timeout,
        "nginx_frontends_imds_retry_timeout": retry_timeout,
        "nginx_frontends_conf_path": str(directory / "nginx.conf"),
        "nginx_frontends_pid_path": str(directory / "nginx.pid"),
        "nginx_frontends_error_log": str(directory / "error.log"),
        "nginx_frontends_access_log": str(directory / "access.log"),
        "nginx_frontends_http_includes": [],
        "nginx_frontends_loopback_manage": False,
        # The private IPs are not this machine's: listening on all addresses lets ``nginx -t`` bind.
        "nginx_frontends_listen_all_addresses": True,
    }


def private_vm(private, backend_port):
    """A VM behind the load balancer; each host of a run gets a backend port of its own, so its ``nginx -t`` can bind."""
    return {
        "description": "a VM with private IP %s behind a Standard load balancer" % private,
        "loadbalancer": {"loadbalancer": {
            "publicIpAddresses": [{"frontendIpAddress": "51.0.0.1", "privateIpAddress": private}],
            "inboundRules": [{"frontendIpAddress": "50.0.0.1", "protocol": "tcp", "frontendPort": 80,
                              "backendPort": backend_port, "privateIpAddress": private}],
            "outboundRules": [{"frontendIpAddress": "50.0.0.1", "privateIpAddress": private}],
        }},
    }


def first_role_run(run_playbook, conf_root, endpoints, host_vars):
    """Run the role once for every host (files in conf_root/<host>/), check it wrote each configuration.

    ``host_vars(name, endpoint, directory)`` gives a host's variables.
    Returns the hosts' variables and a snapshot of what the run wrote.
    """
    hosts = {}
    for name, endpoint in endpoints.items():
        (conf_root / name).mkdir(parents=True)
        hosts[name] = host_vars(name, endpoint, conf_root / name)
    rendered = run_playbook(ROLE_PLAYBOOK, inventory={"all": {"hosts": hosts}},
                            extra_args=("--forks", str(len(hosts)))).assert_ok()
    for name in hosts:
        assert rendered.task(ROLE_WRITE_TASK, name)["changed"] is True, name
        assert (conf_root / name / "nginx.conf").is_file(), name
    return hosts, snapshot(conf_root)


def role_task_names(result, host):
    """The names of the role's tasks that ran for host, without the role prefix."""
    return [name.split(" : ")[-1] for name in result.task_names(host)]


# --------------------------------------------------------------------------- shared runs

_OUTCOMES = {}


def once(key, build):
    """build() the first time key is asked for; the same outcome (value or exception) every later time.

    Several tests look at one expensive ansible-playbook run. The harness
    fixtures are function scoped, so the first test to ask does the run while
    its fixtures are alive and the later ones reuse what it collected, instead
    of repeating the run for every test.
    """
    if key not in _OUTCOMES:
        try:
            _OUTCOMES[key] = (True, build())
        except Exception as exc:  # every later test reports the same failure instead of running again
            _OUTCOMES[key] = (False, exc)
    succeeded, outcome = _OUTCOMES[key]
    if not succeeded:
        raise outcome
    return outcome


# --------------------------------------------------------------------------- harness

# --------------------------------------------------------------------------- module timing

_TIMED_INTERPRETER = """#!/bin/sh
# Runs a module with %(python)s and notes how long the process took.
started=$(date +%%s.%%N)
%(python)s "$@"
status=$?
echo "$started $(date +%%s.%%N)" >> %(log)s
exit $status
"""


def timed_interpreters(directory, hosts, python):
    """{host: path of an interpreter wrapper that logs each module process' start and end time}.

    Used as ansible_python_interpreter, it times the module itself, from the
    start of its Python process to its exit, without ansible's own overhead.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wrappers = {}
    for host in hosts:
        script = directory / ("python-" + host)
        script.write_text(_TIMED_INTERPRETER % {"python": shlex.quote(str(python)),
                                                "log": shlex.quote(str(directory / (host + ".times")))},
                          encoding="utf-8")
        script.chmod(0o755)
        wrappers[host] = str(script)
    return wrappers


def module_seconds(directory, host):
    """Seconds each module process of host took, in order, from the wrapper's log."""
    log = Path(directory) / (host + ".times")
    if not log.exists():
        return []
    return [float(end) - float(start) for start, end in
            (line.split() for line in log.read_text(encoding="utf-8").splitlines() if line.strip())]


# --------------------------------------------------------------------------- report reading

def traceback_lines(result):
    """Lines of ansible-playbook's output that show a Python traceback."""
    lines = (result.stdout + "\n" + result.stderr).splitlines()
    return [line for line in lines if "Traceback" in line]


# --------------------------------------------------------------------------- request log figures

def request_times(requests, status=None):
    """Sorted arrival times of the logged requests, optionally only those answered with status."""
    return sorted(entry["time"] for entry in requests if status is None or entry["status"] == status)


def max_in_window(times, window=1.0):
    """The largest number of the (sorted) times that fall in any half-open window [t, t + window)."""
    best = 0
    for index, start in enumerate(times):
        best = max(best, bisect.bisect_left(times, start + window) - index)
    return best


def load_figures(requests, started_at):
    """What the load test reports about one emulated VM's request log."""
    answered = request_times(requests, 200)
    every = request_times(requests)
    return {
        "requests": len(every),
        "answered_200": len(answered),
        "throttled_429": sum(1 for entry in requests if entry["status"] == 429),
        "other": sum(1 for entry in requests if entry["status"] not in (200, 429)),
        "max_200_in_1s": max_in_window(answered),
        "max_attempts_in_1s": max_in_window(every),
        "first_request_s": round(every[0] - started_at, 2) if every else None,
        "last_success_s": round(answered[-1] - started_at, 2) if answered else None,
        "spread_first_to_last_success_s": round(answered[-1] - every[0], 2) if answered else None,
    }


# --------------------------------------------------------------------------- files

def snapshot(directory):
    """{relative path: (bytes, mtime_ns)} of every file below directory."""
    directory = Path(directory)
    files = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            files[str(path.relative_to(directory))] = (path.read_bytes(), path.stat().st_mtime_ns)
    return files


# --------------------------------------------------------------------------- listeners

def _loopback_socket():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


class RefusingPort:
    """A loopback port that is bound but never listens: connections are refused.

    Holding the bound socket keeps the port from being reused by anything
    else while the test runs.
    """

    def __init__(self):
        self._socket = _loopback_socket()
        self.port = self._socket.getsockname()[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def close(self):
        self._socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class SilentListener(RefusingPort):
    """A port that listens but never accepts: the kernel completes the handshake, nobody ever answers."""

    def __init__(self):
        super().__init__()
        self._socket.listen(64)


class TrapServer:
    """An HTTP server on 127.0.0.1 that records every request it gets and answers a poisoned document.

    Stands in for a proxy or a redirect target: the client under test must
    never reach it. Any method and any request target (a proxy sees absolute
    URLs) is recorded.
    """

    def __init__(self):
        self.requests = []
        self.connections = 0
        trap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def _record(self):
                trap.requests.append({"method": self.command, "target": self.path, "headers": dict(self.headers.items())})
                body = json.dumps(POISON_DOCUMENT).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_HEAD = do_CONNECT = do_OPTIONS = _record

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address):
                trap.connections += 1
                return True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self._server.serve_forever, name="trap-server", daemon=True)
        self._thread.start()

    def close(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class HostileServer:
    """A raw TCP server on 127.0.0.1 that answers every connection in one hostile way.

    Modes:
      header_drip   a 200 status line, then one header byte every ``interval``
                    seconds for ``duration`` seconds, then a valid answer
      endless_body  a 200 JSON answer without Content-Length whose body never ends
      garbage       bytes that are not HTTP at all
      huge_header   a 200 status line and one header line longer than any client allows
      raw           the bytes given as ``raw``, whatever they are (status line, headers and body)
    """

    def __init__(self, mode, interval=0.5, duration=20.0, raw=b""):
        self.mode = mode
        self.raw = raw
        self.interval = interval
        self.duration = duration
        self.connections = 0
        self.bytes_sent = 0
        self._stopping = threading.Event()
        self._socket = _loopback_socket()
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self._threads = []
        self._acceptor = threading.Thread(target=self._accept_loop, name="hostile-" + mode, daemon=True)
        self._acceptor.start()

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                connection = self._socket.accept()[0]
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            worker = threading.Thread(target=self._answer, args=(connection,), daemon=True)
            worker.start()
            self._threads.append(worker)

    def _send(self, connection, data):
        connection.sendall(data)
        self.bytes_sent += len(data)

    def _answer(self, connection):
        try:
            connection.settimeout(5)
            connection.recv(65536)
            getattr(self, "_mode_" + self.mode)(connection)
        except OSError:
            pass
        finally:
            try:
                connection.close()
            except OSError:
                pass

    def _mode_header_drip(self, connection):
        self._send(connection, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Slow: ")
        deadline = time.monotonic() + self.duration
        while time.monotonic() < deadline:
            if self._stopping.wait(self.interval):
                return
            self._send(connection, b"a")
        body = json.dumps(POISON_DOCUMENT).encode("utf-8")
        self._send(connection, b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)

    def _mode_endless_body(self, connection):
        self._send(connection, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
        self._send(connection, b'{"loadbalancer": {"padding": "')
        chunk = b"x" * 65536
        # Stops when the client closes (sendall then fails) or the test ends.
        while not self._stopping.is_set():
            self._send(connection, chunk)

    def _mode_garbage(self, connection):
        self._send(connection, b"\x16\x03\x01\x00\xa5 this is not HTTP\r\n\r\n")

    def _mode_raw(self, connection):
        self._send(connection, self.raw)

    def _mode_huge_header(self, connection):
        self._send(connection, b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * (128 * 1024) + b"\r\n\r\n")

    def close(self):
        self._stopping.set()
        self._socket.close()
        self._acceptor.join(5)
        for worker in self._threads:
            worker.join(5)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
