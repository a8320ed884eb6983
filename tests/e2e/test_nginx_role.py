# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The nginx_frontends role, end to end: the installed collection gathers
# load balancer facts from the IMDS emulator, writes an nginx configuration,
# and a real nginx serves it. nginx, its upstreams and the clients live in a
# network namespace of the test (support.nginx.lb_namespace) that holds the
# VM's private IPs (and, with Floating IP, the frontend IPs the role adds).

import ipaddress
from pathlib import Path

from support.nginx import (
    HEALTH,
    PRIVATE_V4,
    PRIVATE_V6,
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


OTHER_VM = "10.1.0.99"
WARNINGS_TASK = "Show what the listener plan leaves out"


def plan_warnings(result):
    return result.task(WARNINGS_TASK)["msg"]


def static_site_vars(nginx_instance, port):
    return dict(nginx_frontends_private_ips=[PRIVATE_V4],
                nginx_frontends_sites={str(port): {"root": str(nginx_instance.web_root)}})


def test_role_serves_every_listener_converges_and_follows_rule_changes(
        run_playbook, emulator, nginx_instance, free_ports, http_upstream, udp_echo, tcp_echo, lb_namespace):
    net = lb_namespace
    web_port, static_port, udp_port, tcp_port, health_port, added_port = free_ports(6)
    app = http_upstream("app")
    udp_backend, tcp_backend = udp_echo(), tcp_echo()
    web_rules = [inbound("50.0.0.1", PRIVATE_V4, 80, web_port),
                 inbound("2603:10e1:100:2::1:1", PRIVATE_V6, 80, web_port)]
    static_rules = [inbound("50.0.0.2", PRIVATE_V4, 8080, static_port),
                    inbound("50.0.0.3", PRIVATE_V4, 81, static_port)]
    other_rules = [inbound("50.0.0.4", PRIVATE_V4, 53, udp_port, "udp"),
                   inbound("50.0.0.5", PRIVATE_V4, 5432, tcp_port),
                   inbound("50.0.0.9", PRIVATE_V4, 0, 0, "all"),
                   inbound("50.0.0.1", OTHER_VM, 80, web_port)]
    imds = emulator(scenario(*(web_rules + static_rules + other_rules)))
    role_vars = dict(
        nginx_frontends_private_ips=[PRIVATE_V4, PRIVATE_V6],
        nginx_frontends_stream_ports=[tcp_port],
        nginx_frontends_health_port=health_port,
        nginx_frontends_server_names=["www.example.test"],
        nginx_frontends_sites={
            str(web_port): {"upstream": [app.address], "directives": ["add_header X-Served-By nginx-frontends always"]},
            str(static_port): {"root": str(nginx_instance.web_root)},
            f"{udp_port}/udp": {"upstream": [f"127.0.0.1:{udp_backend}"]},
            str(tcp_port): {"upstream": [f"127.0.0.1:{tcp_backend}"]},
        },
        nginx_frontends_default_site={"directives": ["return 200 default-site"]},
    )

    first = run_role(run_playbook, nginx_instance, imds, **role_vars).assert_ok()
    assert first.task("Start nginx")["changed"] is True
    master = nginx_instance.master_pid()
    assert master is not None, nginx_instance.log()
    assert nginx_instance.check_config()[0] == 0, nginx_instance.check_config()[1]
    assert OTHER_VM not in nginx_instance.conf_path.read_text(encoding="utf-8")
    assert any("HA ports rule (all) 50.0.0.9" in message for message in plan_warnings(first))

    # HTTP proxied to the upstream, on the IPv4 and the (bracketed) IPv6 private IP.
    reply = net.http_get(PRIVATE_V4, web_port, "/orders?id=7", host_header="50.0.0.1")
    assert (reply.status, reply.body) == (200, "upstream app /orders?id=7\n")
    assert reply.headers.get("X-Served-By") == "nginx-frontends"
    seen = app.requests[-1]["headers"]
    assert seen["Host"] == "50.0.0.1"
    assert seen["X-Forwarded-For"] == seen["X-Real-IP"] == PRIVATE_V4
    assert answer(net, PRIVATE_V6, web_port, "/v6") == (200, "upstream app /v6\n")
    # A static root, for the port two rules share.
    assert answer(net, PRIVATE_V4, static_port) == (200, nginx_instance.index_text)
    # UDP and plain TCP through the stream module.
    assert net.udp_exchange(PRIVATE_V4, udp_port, b"ping") == b"echo:ping"
    assert net.tcp_exchange(PRIVATE_V4, tcp_port, b"hello") == b"echo:hello"
    # The probe path answers on every HTTP listener and on the probe port, never through the upstream.
    requests_before_probes = len(app.requests)
    for address, port in ((PRIVATE_V4, web_port), (PRIVATE_V6, web_port), (PRIVATE_V4, static_port),
                          (PRIVATE_V4, health_port), (PRIVATE_V6, health_port)):
        assert answer(net, address, port, "/healthz") == HEALTH, (address, port)
    assert len(app.requests) == requests_before_probes
    assert answer(net, PRIVATE_V4, health_port, "/other")[0] == 404

    second = run_role(run_playbook, nginx_instance, imds, **role_vars).assert_ok()
    assert changed_count(second) == 0, second.describe()
    assert nginx_instance.master_pid() == master

    # One rule pair removed, one rule added: the handler reloads the same master.
    imds.set_scenario(scenario(*(web_rules + other_rules + [inbound("50.0.0.6", PRIVATE_V4, 8443, added_port)])))
    third = run_role(run_playbook, nginx_instance, imds, **role_vars).assert_ok()
    assert third.task("Write the nginx configuration")["changed"] is True
    assert third.task("Reload nginx")["changed"] is True
    assert nginx_instance.master_pid() == master
    assert nginx_instance.check_config()[0] == 0
    assert eventually(lambda: answer(net, PRIVATE_V4, added_port), lambda got: got == (200, "default-site"),
                      "the added rule's port") == (200, "default-site")
    assert eventually(lambda: net.refused(PRIVATE_V4, static_port), bool, "the removed rules' port")
    assert answer(net, PRIVATE_V4, web_port, "/still") == (200, "upstream app /still\n")


HOSTILE_RULES = [
    inbound("1.2.3.4; include /etc/passwd", PRIVATE_V4, 80, 80),
    inbound("50.0.0.1", PRIVATE_V4, "80 default_server", 80),
    inbound("50.0.0.1", PRIVATE_V4, 80, 80, "tcp;"),
]


def test_hostile_imds_values_fail_the_run_and_the_running_config_stays(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace):
    net = lb_namespace
    (port,) = free_ports(1)
    good_rule = inbound("50.0.0.1", PRIVATE_V4, 80, port)
    imds = emulator(scenario(good_rule))
    run_role(run_playbook, nginx_instance, imds, **static_site_vars(nginx_instance, port)).assert_ok()
    installed = nginx_instance.conf_path.read_bytes()
    master = nginx_instance.master_pid()
    assert answer(net, PRIVATE_V4, port) == (200, nginx_instance.index_text)

    # Each hostile value is refused on its own in the unit tests; here the
    # first one stops the whole run before anything is written.
    imds.set_scenario(scenario(good_rule, *HOSTILE_RULES))
    result = run_role(run_playbook, nginx_instance, imds, **static_site_vars(nginx_instance, port))
    assert result.rc != 0
    failure = failed_task(result)
    assert failure.task.endswith("Gather the Azure load balancer facts"), result.describe()
    message = failure.result["msg"]
    assert "inboundRules[1].frontendIpAddress" in message and "'1.2.3.4; include /etc/passwd'" in message, message
    assert "Traceback" not in result.stdout + result.stderr
    assert not result.task_results("Write the nginx configuration")
    assert nginx_instance.conf_path.read_bytes() == installed
    assert nginx_instance.master_pid() == master
    assert answer(net, PRIVATE_V4, port) == (200, nginx_instance.index_text)


def test_tampered_cached_facts_are_refused_before_anything_is_written(
        run_playbook, emulator, nginx_instance, free_ports, tmp_path, lb_namespace):
    net = lb_namespace
    (port,) = free_ports(1)
    imds = emulator(scenario(inbound("50.0.0.1", PRIVATE_V4, 80, port)))
    cache = tmp_path / "facts"
    cached = {"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache),
              "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "86400"}
    run_role(run_playbook, nginx_instance, imds, env=cached, **static_site_vars(nginx_instance, port)).assert_ok()
    installed = nginx_instance.conf_path.read_bytes()

    # The second run must use the cached facts: tamper with them.
    def tamper(facts):
        facts["azure_loadbalancer"]["inbound_rules"][0]["private_ip_address"] = PRIVATE_V4 + ";\n}\nserver { listen 9999; }"
    edit_cached_facts(cache, tamper)
    imds.reset()

    result = run_role(run_playbook, nginx_instance, imds, env=cached, **static_site_vars(nginx_instance, port))
    assert result.rc != 0
    failure = failed_task(result)
    assert failure.task.endswith("Plan the nginx listeners from the load balancer facts"), result.describe()
    assert "inbound_rules[0].private_ip_address" in failure.result["msg"]
    assert "is not an IP address" in failure.result["msg"]
    assert "Traceback" not in result.stdout + result.stderr
    assert imds.requests() == [], "the cached facts should have been used"
    assert nginx_instance.conf_path.read_bytes() == installed
    assert answer(net, PRIVATE_V4, port) == (200, nginx_instance.index_text)


def test_config_that_nginx_rejects_never_replaces_the_running_one(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace):
    net = lb_namespace
    (port,) = free_ports(1)
    imds = emulator(scenario(inbound("50.0.0.1", PRIVATE_V4, 80, port)))
    run_role(run_playbook, nginx_instance, imds, **static_site_vars(nginx_instance, port)).assert_ok()
    installed = nginx_instance.conf_path.read_bytes()
    master, workers = nginx_instance.master_pid(), nginx_instance.worker_pids()

    broken = static_site_vars(nginx_instance, port)
    broken["nginx_frontends_sites"][str(port)]["directives"] = ["no_such_directive on"]
    result = run_role(run_playbook, nginx_instance, imds, **broken)
    assert result.rc != 0
    failure = failed_task(result)
    assert failure.task.endswith("Write the nginx configuration"), result.describe()
    assert 'unknown directive "no_such_directive"' in failure.result.get("stderr", ""), failure.result
    assert not result.task_results("Reload nginx")
    assert nginx_instance.conf_path.read_bytes() == installed
    assert (nginx_instance.master_pid(), nginx_instance.worker_pids()) == (master, workers)
    assert answer(net, PRIVATE_V4, port) == (200, nginx_instance.index_text)


# ip prints this IPv4-compatible IPv6 address as "::50.0.0.7"; the facts hold it as "::3200:7".
EMBEDDED_V4_FRONTEND = "::50.0.0.7"


def test_floating_ip_listens_on_frontends_and_puts_them_on_loopback(
        run_playbook, emulator, nginx_instance, free_ports, udp_echo, lb_namespace):
    net = lb_namespace
    web_port, dns_port = free_ports(2)
    udp_backend = udp_echo()
    # With Floating IP nginx binds the frontend IPs, which the role adds to lo of the namespace.
    imds = emulator(scenario(inbound("50.0.0.31", "10.1.0.4", web_port, 80),
                             inbound("2603:10e1:100:2::1:1", "ace:cab:deca:deed::1", web_port, 80),
                             inbound(EMBEDDED_V4_FRONTEND, "ace:cab:deca:deed::1", web_port, 80),
                             inbound("50.0.0.32", "10.1.0.4", dns_port, 53, "udp")))
    role_vars = floating_ip_vars(
        net, nginx_frontends_sites={str(web_port): {"root": str(nginx_instance.web_root)},
                                    f"{dns_port}/udp": {"upstream": [f"127.0.0.1:{udp_backend}"]}})

    first = run_role(run_playbook, nginx_instance, imds, **role_vars).assert_ok()
    added = first.task("Add the Floating IP frontend addresses to the loopback interface")["results"]
    assert sorted(item["item"] for item in added if item.get("changed")) == [
        "2603:10e1:100:2::1:1", "50.0.0.31", "50.0.0.32", "::3200:7"]
    on_lo = net.loopback_addresses()
    for address in ("50.0.0.31", "50.0.0.32", "2603:10e1:100:2::1:1", EMBEDDED_V4_FRONTEND):
        assert ipaddress.ip_address(address) in on_lo, on_lo
    assert EMBEDDED_V4_FRONTEND in net.ip("-o", "addr", "show", "dev", "lo")
    assert nginx_instance.check_config()[0] == 0, nginx_instance.check_config()[1]

    assert answer(net, "50.0.0.31", web_port) == (200, nginx_instance.index_text)
    assert answer(net, "2603:10e1:100:2::1:1", web_port) == (200, nginx_instance.index_text)
    assert answer(net, EMBEDDED_V4_FRONTEND, web_port) == (200, nginx_instance.index_text)
    assert answer(net, "50.0.0.31", web_port, "/healthz") == HEALTH
    assert net.udp_exchange("50.0.0.32", dns_port, b"query") == b"echo:query"

    # The second run finds every address, however ip prints it, and adds none.
    second = run_role(run_playbook, nginx_instance, imds, **role_vars).assert_ok()
    assert changed_count(second) == 0, second.describe()


def test_host_without_load_balancer_is_left_alone_or_fails_on_request(run_playbook, emulator, nginx_instance):
    imds = emulator({"description": "no Standard load balancer", "loadbalancer_error": "no_metadata"})

    skipped = run_role(run_playbook, nginx_instance, imds).assert_ok()
    message = skipped.task("Leave nginx alone because this host has no load balancer metadata")["msg"]
    assert "no_loadbalancer" in message
    assert changed_count(skipped) == 0
    assert not Path(nginx_instance.conf_path).exists()

    failed = run_role(run_playbook, nginx_instance, imds, nginx_frontends_when_unavailable="fail")
    assert failed.rc != 0
    failure = failed_task(failed)
    assert failure.task.endswith("Fail because this host has no load balancer metadata")
    assert "no_loadbalancer" in failure.result["msg"]
    assert not Path(nginx_instance.conf_path).exists()
