# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Fixtures for the nginx_frontends role tests: a real nginx (Debian's package,
# with its stream module) running from a private directory, small upstream
# servers to proxy to, and clients that talk to them.
#
# The role only binds addresses a load balancer rule can have (never loopback
# ones), so every test gets a network namespace of its own, in which the VM's
# private IPs (and, with Floating IP, the frontend IPs) sit on the loopback
# interface. nginx runs in that namespace (started with `ip netns exec`), and
# so do the upstreams and the clients: the test process creates their sockets
# inside it (setns on the creating thread). The role itself runs outside and
# talks to the IMDS emulator on this machine's 127.0.0.1. nginx is never
# started through a service manager and is stopped by the PID in its pid file.
#
#   nginx_binary    (session) path of nginx; installs Debian's packages if missing
#   lb_namespace    (function) Netns with the VM's private IPs on lo; its clients:
#                   http_get, https_get, raw_exchange, tcp_exchange, udp_exchange, refused
#   nginx_instance  (function) NginxInstance in lb_namespace: paths, role variables, pid, stop()
#   http_upstream   (factory) http_upstream(name) -> HttpUpstream recording requests
#   udp_echo        (factory) udp_echo() -> port of a UDP server answering b"echo:" + data
#   tcp_echo        (factory) tcp_echo() -> port of a TCP server doing the same
#   free_ports      (function) free_ports(count) -> high ports free on this machine
#   test_ca         (session) TestCertificates: root CA, intermediate, server certificate made with openssl
#
# and helpers to run the role: inbound(), scenario(), run_role(), answer(),
# changed_count(), failed_task(), floating_ip_vars(), edit_cached_facts(), eventually(),
# HealthProbe (a probe client in a thread).
#
# Outside pytest (the benchmarks), the fixtures' bodies are plain functions:
# ensure_nginx(), FreePorts(), vm_namespace() and nginx_in() (context managers).

import contextlib
import ctypes
import http.client
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .faults import ROLE_PLAYBOOK

NGINX_PACKAGES = ("nginx", "libnginx-mod-stream")
STREAM_MODULE_CONFIG = Path("/etc/nginx/modules-enabled/50-mod-stream.conf")
PORT_RANGE = (18080, 28999)
WAIT_SECONDS = 15.0
IO_TIMEOUT = 5.0
# The VM of the scenarios: its private IPs are on lo inside the namespace.
PRIVATE_V4 = "10.1.0.4"
PRIVATE_V6 = "ace:cab:deca:deed::1"
CLONE_NEWNET = 0x40000000


def _nginx_ready():
    return shutil.which("nginx") is not None and STREAM_MODULE_CONFIG.exists()


def _apt_get_install(packages):
    """Install Debian packages without letting their scripts start services."""
    policy = Path("/usr/sbin/policy-rc.d")
    added_policy = not policy.exists()
    if added_policy:
        policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
        policy.chmod(0o755)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
            done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=600, check=False)
            if done.returncode != 0:
                raise AssertionError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    finally:
        if added_policy:
            policy.unlink()


def ensure_nginx():
    """Path of nginx with its stream module; Debian's packages are installed when they are missing."""
    if not _nginx_ready():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise AssertionError(f"nginx and its stream module are needed: apt-get install {' '.join(NGINX_PACKAGES)}")
        _apt_get_install(NGINX_PACKAGES)
    if not _nginx_ready():
        raise AssertionError("nginx or its stream module is still missing after installing " + " ".join(NGINX_PACKAGES))
    return shutil.which("nginx")


@pytest.fixture(scope="session")
def nginx_binary():
    return ensure_nginx()


# --------------------------------------------------------------------------- ports


def _port_is_free(port):
    for family, kind, address in ((socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0"), (socket.AF_INET, socket.SOCK_DGRAM, "0.0.0.0"),
                                  (socket.AF_INET6, socket.SOCK_STREAM, "::"), (socket.AF_INET6, socket.SOCK_DGRAM, "::")):
        probe = socket.socket(family, kind)
        try:
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            probe.bind((address, port))
        except OSError:
            return False
        finally:
            probe.close()
    return True


class FreePorts:
    """``free_ports(count)`` returns distinct high ports with nothing bound to them, never the same one twice."""

    def __init__(self):
        self.handed_out = set()

    def __call__(self, count):
        ports = []
        candidates = list(range(*PORT_RANGE))
        random.shuffle(candidates)
        for port in candidates:
            if port not in self.handed_out and _port_is_free(port):
                ports.append(port)
                self.handed_out.add(port)
                if len(ports) == count:
                    return ports
        raise AssertionError(f"fewer than {count} free ports in {PORT_RANGE}")


@pytest.fixture
def free_ports():
    """Factory: ``free_ports(count)``, see FreePorts."""
    return FreePorts()


# --------------------------------------------------------------------------- network namespace

_LIBC = ctypes.CDLL(None, use_errno=True)


def _run(command):
    done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class HttpAnswer:
    def __init__(self, status, body, headers):
        self.status = status
        self.body = body
        self.headers = headers

    def __repr__(self):
        return f"HttpAnswer({self.status}, {self.body!r})"


def _answer(connection, path, host_header):
    try:
        headers = {"Host": host_header} if host_header else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return HttpAnswer(response.status, response.read().decode("utf-8", "replace"), dict(response.getheaders()))
    finally:
        connection.close()


class Netns:
    """A network namespace of the test's own, with clients whose sockets live inside it."""

    def __init__(self):
        self.name = "nft-" + uuid.uuid4().hex[:10]
        created = subprocess.run(["ip", "netns", "add", self.name], capture_output=True, text=True, check=False)
        if created.returncode != 0:
            raise AssertionError(
                f"cannot create a network namespace ({created.stderr.strip()}); the nginx tests bind the VM's "
                "addresses inside one and need root with iproute2 (`ip netns`)")
        _run(["ip", "-n", self.name, "link", "set", "lo", "up"])

    def ip(self, *arguments):
        """``ip`` inside the namespace; returns its output."""
        return _run(["ip", "-n", self.name, *arguments])

    def exec_prefix(self):
        return ["ip", "netns", "exec", self.name]

    def add_address(self, address):
        prefix = 128 if ":" in address else 32
        self.ip("addr", "add", f"{address}/{prefix}", "dev", "lo", *(["nodad"] if prefix == 128 else []))

    def loopback_addresses(self):
        """The addresses on lo, parsed."""
        found = set()
        for line in self.ip("-o", "addr", "show", "dev", "lo").splitlines():
            words = line.split()
            for index, word in enumerate(words[:-1]):
                if word in ("inet", "inet6"):
                    found.add(ipaddress.ip_address(words[index + 1].split("/")[0]))
        return found

    @contextlib.contextmanager
    def entered(self):
        """Sockets created in this block belong to the namespace (only this thread switches)."""
        with open(f"/run/netns/{self.name}", "rb") as target, open("/proc/thread-self/ns/net", "rb") as home:
            if _LIBC.setns(target.fileno(), CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns into {self.name}")
            try:
                yield
            finally:
                if _LIBC.setns(home.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to this machine's network namespace")

    def delete(self):
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True, check=False)

    # ----------------------------------------------------------------------- clients

    def http_get(self, address, port, path="/", host_header=None):
        """One GET; returns an HttpAnswer. Raises OSError when nothing answers."""
        with self.entered():
            connection = http.client.HTTPConnection(address, port, timeout=IO_TIMEOUT)
            connection.connect()
        return _answer(connection, path, host_header)

    def https_get(self, address, port, server_name, cafile, path="/", alpn=None):
        """One GET over TLS, verifying the chain against cafile and the certificate against server_name.

        Returns (HttpAnswer, negotiated ALPN protocol or None, TLS version).
        """
        context = ssl.create_default_context(cafile=str(cafile))
        if alpn:
            context.set_alpn_protocols(alpn)
        with self.entered():
            raw = socket.create_connection((address, port), timeout=IO_TIMEOUT)
        tls = context.wrap_socket(raw, server_hostname=server_name)
        negotiated, version = tls.selected_alpn_protocol(), tls.version()
        if negotiated == "h2":
            tls.close()
            return None, negotiated, version
        connection = http.client.HTTPSConnection(server_name, port, timeout=IO_TIMEOUT, context=context)
        connection.sock = tls
        return _answer(connection, path, None), negotiated, version

    def raw_exchange(self, address, port, payload):
        """Send bytes, read until the server closes; for requests that carry a PROXY protocol header."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with self.entered():
            client = socket.socket(family, socket.SOCK_STREAM)
        with client:
            client.settimeout(IO_TIMEOUT)
            client.connect((address, port))
            client.sendall(payload)
            chunks = []
            while True:
                chunk = client.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    def udp_exchange(self, address, port, payload):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with self.entered():
            client = socket.socket(family, socket.SOCK_DGRAM)
        with client:
            client.settimeout(IO_TIMEOUT)
            client.sendto(payload, (address, port))
            return client.recvfrom(2048)[0]

    def tcp_exchange(self, address, port, payload):
        with self.entered():
            client = socket.create_connection((address, port), timeout=IO_TIMEOUT)
        with client:
            client.sendall(payload)
            return client.recv(2048)

    def refused(self, address, port):
        """True when nothing accepts TCP connections on address:port."""
        try:
            with self.entered():
                client = socket.create_connection((address, port), timeout=IO_TIMEOUT)
        except ConnectionRefusedError:
            return True
        client.close()
        return False


@contextlib.contextmanager
def vm_namespace():
    """A namespace with the VM's private IPs on lo, deleted afterwards. Fails (never skips) when it cannot be made."""
    namespace = Netns()
    try:
        for address in (PRIVATE_V4, PRIVATE_V6):
            namespace.add_address(address)
        yield namespace
    finally:
        namespace.delete()


@pytest.fixture
def lb_namespace():
    with vm_namespace() as namespace:
        yield namespace


# --------------------------------------------------------------------------- nginx


class NginxInstance:
    """An nginx whose configuration, pid file, logs, TLS files and web root live in one private directory."""

    def __init__(self, binary, directory, namespace):
        self.binary = binary
        self.namespace = namespace
        self.directory = Path(directory)
        self.conf_path = self.directory / "nginx.conf"
        self.pid_path = self.directory / "nginx.pid"
        self.error_log = self.directory / "error.log"
        self.access_log = self.directory / "access.log"
        self.tls_dir = self.directory / "tls"
        self.web_root = self.directory / "www"
        self.web_root.mkdir()
        self.index_text = f"static page {self.directory.name}\n"
        (self.web_root / "index.html").write_text(self.index_text, encoding="utf-8")
        for path in (self.directory, self.web_root, self.web_root / "index.html"):
            path.chmod(0o755 if path.is_dir() else 0o644)  # the workers run as www-data

    def role_vars(self, **overrides):
        """Role variables that point nginx_frontends at this instance; overrides are added as given."""
        variables = {
            "nginx_frontends_conf_path": str(self.conf_path),
            "nginx_frontends_pid_path": str(self.pid_path),
            "nginx_frontends_error_log": str(self.error_log),
            "nginx_frontends_access_log": str(self.access_log),
            "nginx_frontends_tls_dir": str(self.tls_dir),
            "nginx_frontends_http_includes": [],
            "nginx_frontends_start_command": self.namespace.exec_prefix() + [self.binary, "-c", str(self.conf_path)],
            # nginx -t binds the listen addresses: check where nginx runs.
            "nginx_frontends_validate_command": " ".join(self.namespace.exec_prefix() + [self.binary, "-t", "-q", "-c", "%s"]),
        }
        variables.update(overrides)
        return variables

    def check_config(self):
        """``nginx -t`` on the installed configuration: (exit code, output)."""
        done = subprocess.run(self.namespace.exec_prefix() + [self.binary, "-t", "-c", str(self.conf_path)],
                              stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=False)
        return done.returncode, done.stdout + done.stderr

    def config_dump(self):
        """``nginx -T``: the configuration exactly as nginx loads it."""
        done = subprocess.run(self.namespace.exec_prefix() + [self.binary, "-T", "-c", str(self.conf_path)],
                              stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60, check=True)
        return done.stdout

    def master_pid(self):
        """PID of the running master process, or None."""
        try:
            pid = int(self.pid_path.read_text(encoding="utf-8").strip())
        except (OSError, ValueError):
            return None
        return pid if Path(f"/proc/{pid}").exists() else None

    def worker_pids(self):
        master = self.master_pid()
        if master is None:
            return set()
        children = Path(f"/proc/{master}/task/{master}/children")
        return set(int(pid) for pid in children.read_text(encoding="utf-8").split())

    def log(self):
        try:
            return self.error_log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self):
        """Stop the master process named in the pid file and wait until it is gone."""
        pid = self.master_pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + WAIT_SECONDS
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def nginx_in(binary, namespace):
    """An NginxInstance in ``namespace``, in a directory of its own; stopped and removed afterwards."""
    # A world-readable directory (pytest's tmp_path is private to root): the workers run as www-data.
    directory = tempfile.mkdtemp(prefix="nginx-frontends-", dir="/tmp")
    instance = NginxInstance(binary, directory, namespace)
    try:
        yield instance
    finally:
        instance.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def nginx_instance(nginx_binary, lb_namespace):
    with nginx_in(nginx_binary, lb_namespace) as instance:
        yield instance


# --------------------------------------------------------------------------- upstreams


class HttpUpstream:
    """An HTTP server on 127.0.0.1 of the namespace that answers every GET with its name and records what it got."""

    def __init__(self, name, namespace):
        self.name = name
        self.requests = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                upstream.requests.append({"path": self.path, "headers": dict(self.headers.items())})
                body = f"upstream {upstream.name} {self.path}\n".encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        with namespace.entered():
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"upstream-{name}", daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_upstream(lb_namespace):
    started = []

    def start(name):
        upstream = HttpUpstream(name, lb_namespace)
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        upstream.stop()


class _EchoServer:
    """Answers each UDP datagram or TCP line with b"echo:" and what it got."""

    def __init__(self, kind, namespace):
        with namespace.entered():
            self.socket = socket.socket(socket.AF_INET, kind)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.stopping = threading.Event()
        if kind == socket.SOCK_STREAM:
            self.socket.listen(8)
        self.socket.settimeout(0.2)
        target = self._serve_tcp if kind == socket.SOCK_STREAM else self._serve_udp
        self.thread = threading.Thread(target=target, name=f"echo-{self.port}", daemon=True)
        self.thread.start()

    def _serve_udp(self):
        while not self.stopping.is_set():
            try:
                data, peer = self.socket.recvfrom(2048)
            except (socket.timeout, OSError):
                continue
            self.socket.sendto(b"echo:" + data, peer)

    def _serve_tcp(self):
        while not self.stopping.is_set():
            try:
                connection, _peer = self.socket.accept()
            except (socket.timeout, OSError):
                continue
            with connection:
                connection.settimeout(IO_TIMEOUT)
                try:
                    connection.sendall(b"echo:" + connection.recv(2048))
                except OSError:
                    pass

    def stop(self):
        self.stopping.set()
        self.thread.join(5)
        self.socket.close()


def _echo_servers(kind, namespace):
    """Fixture body: a factory that starts echo servers of one kind; all stop when the test ends."""
    started = []

    def start():
        server = _EchoServer(kind, namespace)
        started.append(server)
        return server.port

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def udp_echo(lb_namespace):
    yield from _echo_servers(socket.SOCK_DGRAM, lb_namespace)


@pytest.fixture
def tcp_echo(lb_namespace):
    yield from _echo_servers(socket.SOCK_STREAM, lb_namespace)


# --------------------------------------------------------------------------- TLS


class TestCertificates:
    """A root CA, an intermediate CA it signed, and a server certificate for ``server_name`` the intermediate signed."""

    server_name = "shop.example.test"

    def __init__(self, directory):
        self.directory = Path(directory)
        self.root = self.directory / "root.crt"
        self.intermediate = self.directory / "intermediate.crt"
        self.certificate = self.directory / "server.crt"
        self.key = self.directory / "server.key"
        ca_ext = self._extensions("ca.ext", "basicConstraints=critical,CA:TRUE,pathlen:0\n"
                                            "keyUsage=critical,keyCertSign,cRLSign\n"
                                            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        leaf_ext = self._extensions("leaf.ext", f"subjectAltName=DNS:{self.server_name}\nbasicConstraints=CA:FALSE\n"
                                                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                                                "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
        curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        root_key = self.directory / "root.key"
        _run(["openssl", "req", "-x509", *curve, "-keyout", str(root_key), "-out", str(self.root), "-days", "3",
              "-subj", "/CN=imds.azure test root CA", "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        intermediate_key = self.directory / "intermediate.key"
        self._issue(curve, intermediate_key, self.intermediate, "/CN=imds.azure test intermediate CA", self.root,
                    root_key, ca_ext)
        self._issue(curve, self.key, self.certificate, f"/CN={self.server_name}", self.intermediate,
                    intermediate_key, leaf_ext)

    def _extensions(self, name, text):
        path = self.directory / name
        path.write_text(text, encoding="utf-8")
        return path

    def _issue(self, curve, key, certificate, subject, issuer, issuer_key, extensions):
        request = certificate.with_suffix(".csr")
        _run(["openssl", "req", *curve, "-keyout", str(key), "-out", str(request), "-subj", subject])
        _run(["openssl", "x509", "-req", "-in", str(request), "-CA", str(issuer), "-CAkey", str(issuer_key),
              "-CAcreateserial", "-out", str(certificate), "-days", "3", "-extfile", str(extensions)])

    def text(self, path):
        return Path(path).read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    return TestCertificates(tmp_path_factory.mktemp("test-ca"))


# --------------------------------------------------------------------------- running the role

HOST = "localhost"
HEALTH = (200, "OK\n")


def inbound(frontend, private, frontend_port, backend_port, protocol="tcp"):
    return {"frontendIpAddress": frontend, "privateIpAddress": private, "protocol": protocol,
            "frontendPort": frontend_port, "backendPort": backend_port}


def scenario(*rules):
    return {"description": "nginx_frontends test VM, addresses in the test's network namespace",
            "loadbalancer": {"loadbalancer": {"publicIpAddresses": [], "inboundRules": list(rules), "outboundRules": []}}}


def run_role(run_playbook, nginx_instance, imds, env=None, check=False, **role_vars):
    """Run the role from the installed collection against the emulator and this nginx instance."""
    variables = nginx_instance.role_vars(nginx_frontends_imds_endpoint=imds.endpoint,
                                         nginx_frontends_imds_retry_timeout=0, **role_vars)
    return run_playbook(ROLE_PLAYBOOK, extra_vars=variables, env=env, check=check)


def floating_ip_vars(namespace, **more):
    """Role variables for Floating IP, with the loopback commands run inside the test's namespace."""
    return dict(
        nginx_frontends_floating_ip=True,
        nginx_frontends_loopback_list_command=["ip", "-n", namespace.name, "-o", "addr", "show", "dev", "lo"],
        nginx_frontends_loopback_add_command=["ip", "-n", namespace.name, "addr", "add", "{address}/{prefix_length}",
                                              "dev", "lo"],
        **more)


def changed_count(result):
    return result.stats[HOST]["changed"]


def answer(namespace, address, port, path="/", host_header=None):
    reply = namespace.http_get(address, port, path, host_header)
    return reply.status, reply.body


def failed_task(result):
    failures = [entry for entry in result.results if entry.result.get("failed")]
    assert len(failures) == 1, result.describe()
    return failures[0]


def edit_cached_facts(cache_dir, edit):
    """Change the facts of the one host in a jsonfile fact cache.

    Recent ansible-core versions keep the facts as a JSON text under
    "__payload__" in a file named after a format tag and the host; older ones
    store the facts object itself in a file named after the host.
    """
    (cache_file,) = [path for path in Path(cache_dir).iterdir() if path.name.endswith(HOST)]
    document = json.loads(cache_file.read_text(encoding="utf-8"))
    wrapped = isinstance(document.get("__payload__"), str)
    facts = json.loads(document["__payload__"]) if wrapped else document
    edit(facts)
    if wrapped:
        document["__payload__"] = json.dumps(facts)
    cache_file.write_text(json.dumps(document if wrapped else facts), encoding="utf-8")


# --------------------------------------------------------------------------- probing


class HealthProbe:
    """A load balancer's probe and a client, in a thread: every 50 ms, GET the health path and the site.

    ``record`` holds (time, health answer, site answer) per probe, an OSError in
    place of an answer when nothing answered. Use as a context manager: probing
    starts on entry and stops on exit.
    """

    def __init__(self, namespace, health_port, site_port, address=PRIVATE_V4, every=0.05):
        self.namespace = namespace
        self.health_port, self.site_port, self.address = health_port, site_port, address
        self.every = every
        self.record = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._probe, name=f"probe-{health_port}", daemon=True)

    def _get(self, port, path):
        try:
            return answer(self.namespace, self.address, port, path)
        except OSError as exc:  # nginx swapping its workers
            return exc

    def _probe(self):
        while not self._stopping.is_set():
            self.record.append((time.time(), self._get(self.health_port, "/healthz"), self._get(self.site_port, "/")))
            self._stopping.wait(self.every)

    def first(self, health, since=0.0):
        """The time of the first probe at or after ``since`` whose health answer was ``health``, or None."""
        return next((when for when, got, _site in list(self.record) if when >= since and got == health), None)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_exc):
        self._stopping.set()
        self._thread.join(IO_TIMEOUT * 3)


# --------------------------------------------------------------------------- waiting


def eventually(probe, check, what):
    """Call probe() until check(result) holds (nginx swaps workers after a reload); fail after a bound."""
    deadline = time.monotonic() + WAIT_SECONDS
    last = None
    while True:
        try:
            last = probe()
        except OSError as exc:
            last = exc
        if check(last):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {last!r} after {WAIT_SECONDS:.0f}s")
        time.sleep(0.1)
