# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DESCRIPTION = """Plan and render the nginx_frontends configuration for large load balancer answers.

    python benchmarks/role_render.py               # 1,000 rules, 7 repeats, prints the table
    python benchmarks/role_render.py --rules 2000 --repeats 3

In process, as the role does it: the nginx_listeners filter (which re-validates
the facts first) and the role's template through Ansible's Templar. Every
listening port terminates TLS. Shapes of the answer:

    ports      every rule has a backend port of its own (one server block each)
    one port   every rule has its own frontend IP and the same backend port
               (one server block listing every frontend: where a planner that
               searches lists goes quadratic)

The target is plan + render under 1 s for 1,000 rules on a 2-core machine. The
figures are medians of the CPU time of this process (time.process_time), so
that other work on a shared machine does not inflate them; the wall-clock
median is shown next to them. For reading: nothing here asserts on time.
"""

import argparse
import statistics
import time

from support.collection import importable_checkout
from support.paths import REPO_ROOT

TEMPLATE = REPO_ROOT / "roles" / "nginx_frontends" / "templates" / "nginx.conf.j2"
DEFAULT_RULES = 1000
DEFAULT_REPEATS = 7
TARGET_SECONDS = 1.0
PRIVATE_IP = "10.20.0.4"
MAIN = {
    "user": "www-data", "worker_processes": "auto", "worker_connections": "1024", "pid_path": "/run/nginx.pid",
    "error_log": "/var/log/nginx/error.log", "access_log": "/var/log/nginx/access.log",
    "mime_types_path": "/etc/nginx/mime.types", "main_includes": ["/etc/nginx/modules-enabled/*.conf"],
    "http_includes": ["/etc/nginx/conf.d/*.conf"], "stream_includes": [],
}


def frontend(index):
    return "20.60.%d.%d" % (index // 250, index % 250 + 1)


def answer(count, shape):
    rules = []
    for index in range(count):
        backend = 10000 + index if shape == "ports" else 443
        rules.append({"frontendIpAddress": frontend(index), "privateIpAddress": PRIVATE_IP, "protocol": "Tcp",
                      "frontendPort": 443, "backendPort": backend})
    return {"loadbalancer": {"publicIpAddresses": [], "inboundRules": rules, "outboundRules": []}}


def tls_sites(facts):
    tls = {"certificate": "/etc/ssl/certs/shop.example.com.fullchain.pem",
           "key": "/etc/ssl/private/shop.example.com.key", "http2": True, "hsts": True}
    ports = sorted(set(rule["backend_port"] for rule in facts["inbound_rules"]))
    return dict((str(port), {"upstream": ["127.0.0.1:8080"], "tls": tls}) for port in ports)


def measure(count, shape, repeats):
    # pylint: disable=import-outside-toplevel
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template
    from ansible_collections.imds.azure.plugins.filter.nginx_frontends import nginx_listeners
    from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import normalize_loadbalancer

    facts = normalize_loadbalancer(answer(count, shape), "2020-10-01")
    sites = tls_sites(facts)
    template_text = TEMPLATE.read_text(encoding="utf-8")
    plans, renders, walls, lines = [], [], [], 0
    for _repeat in range(repeats):
        wall, started = time.perf_counter(), time.process_time()
        plan = nginx_listeners(facts, sites=sites, health_port=8081)
        plans.append(time.process_time() - started)
        templar = Templar(loader=DataLoader(), variables={
            "nginx_frontends__plan": plan, "nginx_frontends__main": MAIN, "ansible_managed": "Ansible managed"})
        started = time.process_time()
        text = templar.template(trust_as_template(template_text), escape_backslashes=False,
                                overrides={"trim_blocks": True, "lstrip_blocks": True})
        renders.append(time.process_time() - started)
        walls.append(time.perf_counter() - wall)
        lines = text.count("\n")
        assert text.count("ssl_certificate ") == len(plan["http_servers"])
    return statistics.median(plans), statistics.median(renders), statistics.median(walls), lines


def report(rule_counts=(DEFAULT_RULES,), repeats=DEFAULT_REPEATS):
    """One Markdown table per rule count: plan, render and their sum against the target."""
    importable_checkout()
    lines = ["## nginx_frontends at scale: plan + render with TLS on every port (`benchmarks/role_render.py`)", ""]
    for rules in rule_counts:
        lines.append("| answer (%s rules, TLS on every port) | plan | render | plan + render | of the %.0f s target "
                     "| wall clock | config lines |" % ("{:,}".format(rules), TARGET_SECONDS))
        lines.append("|---|---|---|---|---|---|---|")
        for shape in ("ports", "one port"):
            plan, render, wall, config_lines = measure(rules, shape, repeats)
            lines.append("| %s | %.0f ms | %.0f ms | %.0f ms | %.2f | %.0f ms | %d |" % (
                shape, 1000 * plan, 1000 * render, 1000 * (plan + render), (plan + render) / TARGET_SECONDS,
                1000 * wall, config_lines))
        lines.append("")
    lines.append("Medians of %d repeats (CPU time of this process; wall clock apart)." % repeats)
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=int, nargs="+", default=[DEFAULT_RULES],
                        help="inbound rules in the answer, one table each (default %d)" % DEFAULT_RULES)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                        help="runs per shape; the median is shown (default %d)" % DEFAULT_REPEATS)
    args = parser.parse_args()
    print(report(args.rules, args.repeats))


if __name__ == "__main__":
    main()
