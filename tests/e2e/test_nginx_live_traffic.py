# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The nginx_frontends role in front of live traffic: HTTPS with a certificate
# chain from a test CA, configurations that would take the host out of
# rotation, addresses no load balancer rule can have, check mode, drain,
# PROXY protocol and the load balancer idle timeout, each against the real
# nginx the tests start in their own network namespace.

import ipaddress
import re
import socket
import ssl
import struct
import subprocess

import pytest

from support.nginx import (
    HEALTH,
    PRIVATE_V4,
    answer,
    changed_count,
    edit_cached_facts,
    eventually,
    failed_task,
    floating_ip_vars,
    inbound,
    run_role,
    scenario,
)


WRITE_TASK = "Write the nginx configuration"
DRAINING = (503, "draining\n")


def static_site(nginx_instance, port, **site):
    return {str(port): dict({"root": str(nginx_instance.web_root)}, **site)}


def failure_of(result, task_name):
    assert result.rc != 0, result.describe()
    failure = failed_task(result)
    assert failure.task.endswith(task_name), result.describe()
    assert "Traceback" not in result.stdout + result.stderr
    return failure.result


# --------------------------------------------------------------------------- HTTPS


def test_https_serves_a_verified_chain_http2_hsts_and_redirects_plain_http(
        run_playbook, emulator, nginx_instance, free_ports, http_upstream, lb_namespace, test_ca):
    net = lb_namespace
    tls_port, path_port, plain_port = free_ports(3)
    app = http_upstream("shop")
    imds = emulator(scenario(inbound("50.0.0.1", PRIVATE_V4, 443, tls_port),
                             inbound("50.0.0.1", PRIVATE_V4, 8443, path_port),
                             inbound("50.0.0.1", PRIVATE_V4, 80, plain_port)))
    key_text = test_ca.text(test_ca.key)
    sites = {
        # Certificate, chain and key given as content: the role installs them.
        str(tls_port): {"upstream": [app.address], "server_names": [test_ca.server_name],
                        "tls": {"certificate_content": test_ca.text(test_ca.certificate),
                                "chain_content": test_ca.text(test_ca.intermediate),
                                "key_content": key_text, "http2": True, "hsts": True}},
        # Files already on the host: the role joins certificate and chain.
        str(path_port): {"root": str(nginx_instance.web_root),
                         "tls": {"certificate": str(test_ca.certificate), "chain": str(test_ca.intermediate),
                                 "key": str(test_ca.key), "protocols": ["TLSv1.3"]}},
        str(plain_port): {"redirect_to_https": True},
    }

    first = run_role(run_playbook, nginx_instance, imds, nginx_frontends_sites=sites).assert_ok()
    assert key_text.strip().splitlines()[1] not in first.stdout + first.stderr, "the private key reached the output"
    keys = sorted(nginx_instance.tls_dir.glob("*.key"))
    assert len(keys) == 1 and (keys[0].stat().st_mode & 0o777) == 0o600, keys

    # The client trusts the root only: the handshake needs the chain, and checks the host name.
    reply, alpn, version = net.https_get(PRIVATE_V4, tls_port, test_ca.server_name, test_ca.root, "/cart",
                                         alpn=["http/1.1"])
    assert (reply.status, reply.body) == (200, "upstream shop /cart\n")
    assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert app.requests[-1]["headers"]["X-Forwarded-Proto"] == "https"
    assert version in ("TLSv1.2", "TLSv1.3")
    health, _alpn, _version = net.https_get(PRIVATE_V4, tls_port, test_ca.server_name, test_ca.root, "/healthz")
    assert (health.status, health.body) == HEALTH
    with pytest.raises(ssl.SSLCertVerificationError):
        net.https_get(PRIVATE_V4, tls_port, "other.example.test", test_ca.root)

    # HTTP/2 when enabled (ALPN, and a real HTTP/2 request with curl), HTTP/1.1 elsewhere.
    assert net.https_get(PRIVATE_V4, tls_port, test_ca.server_name, test_ca.root, alpn=["h2", "http/1.1"])[1] == "h2"
    curl = subprocess.run(
        net.exec_prefix() + ["curl", "--http2", "-sS", "--max-time", "5", "--cacert", str(test_ca.root),
                             "--resolve", f"{test_ca.server_name}:{tls_port}:{PRIVATE_V4}",
                             "-o", "/dev/null", "-w", "%{http_version} %{response_code}",
                             f"https://{test_ca.server_name}:{tls_port}/healthz"],
        capture_output=True, text=True, timeout=30, check=False)
    assert curl.stdout == "2 200", curl.stderr
    reply, alpn, version = net.https_get(PRIVATE_V4, path_port, test_ca.server_name, test_ca.root,
                                         alpn=["h2", "http/1.1"])
    assert (reply.status, reply.body, alpn, version) == (200, nginx_instance.index_text, "http/1.1", "TLSv1.3")

    # Plain HTTP answers with a redirect, except for the probe.
    redirect = net.http_get(PRIVATE_V4, plain_port, "/cart?id=3", host_header=test_ca.server_name)
    assert (redirect.status, redirect.headers["Location"]) == (301, f"https://{test_ca.server_name}/cart?id=3")
    assert answer(net, PRIVATE_V4, plain_port, "/healthz") == HEALTH

    second = run_role(run_playbook, nginx_instance, imds, nginx_frontends_sites=sites).assert_ok()
    assert changed_count(second) == 0, second.describe()

    # A key that is not there fails before anything is replaced.
    installed = nginx_instance.conf_path.read_bytes()
    missing = dict(sites)
    missing[str(path_port)] = dict(sites[str(path_port)], tls=dict(sites[str(path_port)]["tls"],
                                                                   key="/nonexistent/server.key"))
    failed = run_role(run_playbook, nginx_instance, imds, nginx_frontends_sites=missing)
    message = failure_of(failed, "Fail before anything is replaced when a TLS file is missing or unreadable")["results"]
    texts = [item["msg"] for item in message if item.get("failed")]
    assert texts and f"sites['{path_port}'].tls.key" in texts[0] and "does not exist" in texts[0], texts
    assert nginx_instance.conf_path.read_bytes() == installed
    assert net.https_get(PRIVATE_V4, path_port, test_ca.server_name, test_ca.root)[0].status == 200


# --------------------------------------------------------------------------- never an outage


def test_an_answer_without_rules_for_this_host_keeps_the_running_config(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace):
    net = lb_namespace
    port, health_port = free_ports(2)
    serving = scenario(inbound("50.0.0.1", PRIVATE_V4, 80, port))
    imds = emulator(serving)
    role_vars = dict(nginx_frontends_sites=static_site(nginx_instance, port))
    run_role(run_playbook, nginx_instance, imds, **role_vars).assert_ok()
    installed, master = nginx_instance.conf_path.read_bytes(), nginx_instance.master_pid()

    def still_serving():
        assert nginx_instance.conf_path.read_bytes() == installed
        assert nginx_instance.master_pid() == master
        assert answer(net, PRIVATE_V4, port) == (200, nginx_instance.index_text)
        assert answer(net, PRIVATE_V4, port, "/healthz") == HEALTH

    # An empty answer.
    imds.set_scenario(scenario())
    empty = run_role(run_playbook, nginx_instance, imds, **role_vars)
    message = failure_of(empty, "Keep the running configuration because no inbound rule leads to this host")["msg"]
    assert "the facts hold 0 inbound rule(s)" in message and "nginx_frontends_allow_no_listeners" in message, message
    still_serving()

    # Private IPs that match no rule.
    imds.set_scenario(serving)
    unmatched = run_role(run_playbook, nginx_instance, imds, nginx_frontends_private_ips=["10.1.0.77"], **role_vars)
    message = failure_of(unmatched, "Keep the running configuration because no inbound rule leads to this host")["msg"]
    assert "for private IP(s) 10.1.0.4" in message and "0 of them lead to 10.1.0.77" in message, message
    still_serving()

    # Opting in installs a configuration that still answers the probe.
    imds.set_scenario(scenario(inbound("50.0.0.9", PRIVATE_V4, 0, 0, "all")))
    no_health = run_role(run_playbook, nginx_instance, imds, nginx_frontends_allow_no_listeners=True, **role_vars)
    failure_of(no_health, "Keep the running configuration because nothing in the new one answers the health probe")
    still_serving()
    opted_in = run_role(run_playbook, nginx_instance, imds, nginx_frontends_allow_no_listeners=True,
                        nginx_frontends_health_port=health_port, **role_vars).assert_ok()
    assert opted_in.task(WRITE_TASK)["changed"] is True
    assert eventually(lambda: answer(net, PRIVATE_V4, health_port, "/healthz"), lambda got: got == HEALTH,
                      "the health port") == HEALTH
    assert eventually(lambda: net.refused(PRIVATE_V4, port), bool, "the port of the removed rule")


# --------------------------------------------------------------------------- addresses


FIELD = re.compile(r"(?i)inbound_?rules\[0\]\.frontend_?ip_?address")


@pytest.mark.parametrize("address", ["169.254.169.254", "168.63.129.16", "0.0.0.0", "224.0.0.18", "127.0.0.9",
                                     "fe80::1"])
def test_addresses_no_frontend_can_have_are_never_bound_or_added_to_loopback(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace, address):
    net = lb_namespace
    (port,) = free_ports(1)
    imds = emulator(scenario(inbound(address, PRIVATE_V4, port, 80)))
    before = net.loopback_addresses()
    result = run_role(run_playbook, nginx_instance, imds, **floating_ip_vars(
        net, nginx_frontends_sites=static_site(nginx_instance, port)))
    assert result.rc != 0, result.describe()
    failure = failed_task(result)
    assert failure.task.endswith(("Gather the Azure load balancer facts",
                                  "Plan the nginx listeners from the load balancer facts")), result.describe()
    assert FIELD.search(failure.result["msg"]), failure.result["msg"]
    assert not result.task_results("Add the Floating IP frontend addresses to the loopback interface")
    assert net.loopback_addresses() == before
    assert not nginx_instance.conf_path.exists()


def test_a_platform_address_in_cached_facts_is_refused_and_the_running_config_stays(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tmp_path):
    net = lb_namespace
    (port,) = free_ports(1)
    imds = emulator(scenario(inbound("50.0.0.31", PRIVATE_V4, port, 80)))
    cache = {"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(tmp_path),
             "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "86400"}
    role_vars = floating_ip_vars(net, nginx_frontends_sites=static_site(nginx_instance, port))
    run_role(run_playbook, nginx_instance, imds, env=cache, **role_vars).assert_ok()
    installed, before = nginx_instance.conf_path.read_bytes(), net.loopback_addresses()
    assert ipaddress.ip_address("50.0.0.31") in before

    def tamper(facts):
        facts["azure_loadbalancer"]["inbound_rules"][0]["frontend_ip_address"] = "169.254.169.254"
    edit_cached_facts(tmp_path, tamper)
    result = run_role(run_playbook, nginx_instance, imds, env=cache, **role_vars)
    message = failure_of(result, "Plan the nginx listeners from the load balancer facts")["msg"]
    assert FIELD.search(message) and "169.254.169.254" in message, message
    assert net.loopback_addresses() == before
    assert nginx_instance.conf_path.read_bytes() == installed
    assert answer(net, "50.0.0.31", port) == (200, nginx_instance.index_text)


# --------------------------------------------------------------------------- check mode


def test_check_mode_runs_nginx_t_on_the_candidate_and_writes_nothing(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace, test_ca):
    net = lb_namespace
    port, tls_port = free_ports(2)
    imds = emulator(scenario(inbound("50.0.0.1", PRIVATE_V4, 80, port), inbound("50.0.0.1", PRIVATE_V4, 443, tls_port)))
    run_role(run_playbook, nginx_instance, imds, nginx_frontends_sites=static_site(nginx_instance, port)).assert_ok()
    installed, master = nginx_instance.conf_path.read_bytes(), nginx_instance.master_pid()

    def untouched():
        assert nginx_instance.conf_path.read_bytes() == installed
        assert not nginx_instance.tls_dir.exists()
        assert nginx_instance.master_pid() == master
        assert answer(net, PRIVATE_V4, port) == (200, nginx_instance.index_text)

    rejected = run_role(run_playbook, nginx_instance, imds, check=True, nginx_frontends_sites=static_site(
        nginx_instance, port, directives=["no_such_directive on"]))
    message = failure_of(rejected, "Fail because nginx rejects the candidate configuration")["msg"]
    assert 'unknown directive "no_such_directive"' in message, message
    untouched()

    # A good change, with TLS content to install: changed, and still nothing written.
    sites = static_site(nginx_instance, port, directives=["add_header X-Checked yes always"])
    sites[str(tls_port)] = {"root": str(nginx_instance.web_root),
                            "tls": {"certificate_content": test_ca.text(test_ca.certificate),
                                    "chain_content": test_ca.text(test_ca.intermediate),
                                    "key_content": test_ca.text(test_ca.key)}}
    good = run_role(run_playbook, nginx_instance, imds, check=True, nginx_frontends_sites=sites).assert_ok()
    assert good.task(WRITE_TASK)["changed"] is True
    assert good.task("Run nginx -t on the candidate configuration")["rc"] == 0
    assert not good.task("Reload nginx").get("changed")
    untouched()


# --------------------------------------------------------------------------- drain


def test_drain_turns_the_probe_to_503_while_traffic_keeps_flowing(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace):
    net = lb_namespace
    port, health_port = free_ports(2)
    imds = emulator(scenario(inbound("50.0.0.1", PRIVATE_V4, 80, port)))
    role_vars = dict(nginx_frontends_sites=static_site(nginx_instance, port), nginx_frontends_health_port=health_port)
    run_role(run_playbook, nginx_instance, imds, **role_vars).assert_ok()
    master = nginx_instance.master_pid()

    drained = run_role(run_playbook, nginx_instance, imds, nginx_frontends_drain=True, **role_vars).assert_ok()
    assert drained.task("Reload nginx")["changed"] is True
    for probe_port in (port, health_port):
        assert eventually(lambda: answer(net, PRIVATE_V4, probe_port, "/healthz"), lambda got: got == DRAINING,
                          "the drained probe") == DRAINING
    assert answer(net, PRIVATE_V4, port) == (200, nginx_instance.index_text)

    run_role(run_playbook, nginx_instance, imds, nginx_frontends_drain=False, **role_vars).assert_ok()
    for probe_port in (port, health_port):
        assert eventually(lambda: answer(net, PRIVATE_V4, probe_port, "/healthz"), lambda got: got == HEALTH,
                          "the restored probe") == HEALTH
    assert nginx_instance.master_pid() == master


# --------------------------------------------------------------------------- PROXY protocol


def proxy_v1(source, destination, source_port, destination_port):
    return f"PROXY TCP4 {source} {destination} {source_port} {destination_port}\r\n".encode("ascii")


def proxy_v2(source, destination, source_port, destination_port):
    addresses = (socket.inet_aton(source) + socket.inet_aton(destination)
                 + struct.pack("!HH", source_port, destination_port))
    # Signature, version 2 / PROXY command, TCP over IPv4, address length.
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


def get_request(path):
    return f"GET {path} HTTP/1.1\r\nHost: 50.0.0.1\r\nConnection: close\r\n\r\n".encode("ascii")


def test_proxy_protocol_v1_and_v2_restore_the_client_address_on_every_port(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace, http_upstream, tcp_echo):
    net = lb_namespace
    port, health_port, tcp_port = free_ports(3)
    app = http_upstream("app")
    imds = emulator(scenario(inbound("50.0.0.1", PRIVATE_V4, 443, port),
                             inbound("50.0.0.1", PRIVATE_V4, 5432, tcp_port)))
    run_role(run_playbook, nginx_instance, imds, nginx_frontends_proxy_protocol=True,
             nginx_frontends_health_port=health_port, nginx_frontends_stream_ports=[tcp_port],
             nginx_frontends_sites={str(port): {"upstream": [app.address]},
                                    str(tcp_port): {"upstream": [f"127.0.0.1:{tcp_echo()}"]}}).assert_ok()

    for header, client in ((proxy_v1, "203.0.113.7"), (proxy_v2, "198.51.100.9")):
        reply = net.raw_exchange(PRIVATE_V4, port, header(client, PRIVATE_V4, 40000, port) + get_request("/pp"))
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]
        assert app.requests[-1]["headers"]["X-Real-IP"] == client
        probe = net.raw_exchange(PRIVATE_V4, health_port,
                                 header("168.63.129.16", PRIVATE_V4, 40001, health_port) + get_request("/healthz"))
        assert probe.startswith(b"HTTP/1.1 200") and probe.endswith(b"OK\n"), probe[:200]
        echoed = net.raw_exchange(PRIVATE_V4, tcp_port, header(client, PRIVATE_V4, 40002, tcp_port) + b"hello")
        assert echoed == b"echo:hello"
    # Without the header the connection is refused by nginx, not served.
    plain = net.raw_exchange(PRIVATE_V4, port, get_request("/no-header"))
    assert not plain.startswith(b"HTTP/1.1 200"), plain[:200]
    assert all(request["path"] != "/no-header" for request in app.requests)


# --------------------------------------------------------------------------- idle timeout


def test_idle_timeout_sets_the_timeouts_nginx_loads_and_refuses_longer_ones(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tcp_echo):
    net = lb_namespace
    port, tcp_port = free_ports(2)
    imds = emulator(scenario(inbound("50.0.0.1", PRIVATE_V4, 80, port), inbound("50.0.0.1", PRIVATE_V4, 5432, tcp_port)))
    sites = static_site(nginx_instance, port)
    sites[str(tcp_port)] = {"upstream": [f"127.0.0.1:{tcp_echo()}"]}
    role_vars = dict(nginx_frontends_stream_ports=[tcp_port], nginx_frontends_sites=sites)
    run_role(run_playbook, nginx_instance, imds, nginx_frontends_lb_idle_timeout=30,
             nginx_frontends_keepalive_timeout=600, nginx_frontends_proxy_timeout=1500, **role_vars).assert_ok()
    loaded = nginx_instance.config_dump()
    for line in ("keepalive_timeout 600s;", "proxy_read_timeout 1500s;", "proxy_send_timeout 1500s;",
                 "proxy_timeout 1500s;", "proxy_socket_keepalive on;",
                 f"listen {PRIVATE_V4}:{port} so_keepalive=120s:30s:3;",
                 f"listen {PRIVATE_V4}:{tcp_port} so_keepalive=120s:30s:3;"):
        assert line in loaded, line
    assert net.tcp_exchange(PRIVATE_V4, tcp_port, b"ping") == b"echo:ping"
    installed = nginx_instance.conf_path.read_bytes()

    # The default idle timeout is 4 minutes: a 5 minute proxy timeout would outlive the flow.
    too_long = run_role(run_playbook, nginx_instance, imds, nginx_frontends_sites=dict(
        sites, **{str(port): dict(sites[str(port)], directives=["proxy_read_timeout 5m"])}),
        nginx_frontends_stream_ports=[tcp_port])
    message = failure_of(too_long, "Plan the nginx listeners from the load balancer facts")["msg"]
    assert "proxy_read_timeout 5m is not below the load balancer idle timeout of 4 minutes" in message, message
    assert nginx_instance.conf_path.read_bytes() == installed
    also_long = run_role(run_playbook, nginx_instance, imds, nginx_frontends_keepalive_timeout=240, **role_vars)
    message = failure_of(also_long, "Plan the nginx listeners from the load balancer facts")["msg"]
    assert "keepalive_timeout: 240 s is not below the load balancer idle timeout of 4 minutes" in message, message
    assert nginx_instance.conf_path.read_bytes() == installed
