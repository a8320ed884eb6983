# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DESCRIPTION = """What the largest answer IMDS may send costs: a valid load balancer document just under the
client's 1 MiB body limit, every entry distinct (the worst case for removing duplicates).

    python benchmarks/large_answer.py               # 5 rounds, prints a Markdown table
    python benchmarks/large_answer.py --rounds 3

Served on 127.0.0.1 by a small HTTP server in this process. Measured in CPU seconds (user + system; they
depend far less than wall time on what else the machine runs), median of the rounds:

    read        the plain read: http.client GET + json.loads, in this process
    client      ImdsClient.get_json (the collection's read, same answer)
    normalise   normalize_loadbalancer() on the parsed document
    facts read  client + normalise: what loadbalancer_facts does after its start-up
    revalidate  validate_facts() on the facts read back from a JSON fact cache
    planner     the nginx_frontends filter's nginx_listeners() on those facts
    process     the whole module, run as a process (python loadbalancer_facts.py args.json), next to a
                module that only does the plain read and returns the document as it came (same start-up,
                same exit_json)

Ratios against the plain read are printed with each row. Nothing here asserts on time.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http import client as http_client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support.collection import importable_checkout
from support.paths import REPO_ROOT

PLAIN_READ_MODULE = REPO_ROOT / "benchmarks" / "modules" / "plain_read.py"
DEFAULT_ROUNDS = 5
MAX_BODY_BYTES = 1024 * 1024
API = "2020-10-01"


def compact(document):
    return json.dumps(document, separators=(",", ":"))


def largest_answer(limit=MAX_BODY_BYTES - 4096):
    """The biggest valid document under limit bytes, every entry distinct: one inbound rule for every four
    address pairs (outbound rules and public IPs, the smallest entries), so that it holds as many entries as
    a 1 MiB answer can while every kind of entry is well represented."""
    inbound, outbound, public = [], [], []
    size = len(compact({"loadbalancer": {"publicIpAddresses": [], "inboundRules": [], "outboundRules": []}}))
    number = 0
    while True:
        frontend = "20.%d.%d.%d" % (number // 65536 % 256, number // 256 % 256, number % 256 or 1)
        private = "10.%d.%d.%d" % (number // 65536 % 256, number // 256 % 256, number % 256 or 1)
        kind = number % 5
        if kind == 0:
            entry = {"frontendIpAddress": frontend, "protocol": "Tcp", "frontendPort": 1 + number % 65000,
                     "backendPort": 1 + number % 65000, "privateIpAddress": private}
            target = inbound
        elif kind in (1, 2):
            entry = {"frontendIpAddress": frontend, "privateIpAddress": private}
            target = outbound
        else:
            entry = {"frontendIpAddress": frontend, "privateIpAddress": private}
            target = public
        grown = size + len(compact(entry)) + 1
        if grown > limit:
            break
        target.append(entry)
        size = grown
        number += 1
    document = {"loadbalancer": {"publicIpAddresses": public, "inboundRules": inbound, "outboundRules": outbound}}
    return document, number


class _Server:
    def __init__(self, body):
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# Python and AnsibleModule's import, which every module run pays whatever it does.
STARTUP = "from ansible.module_utils.basic import AnsibleModule"


def plain_read(port):
    connection = http_client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/metadata/loadbalancer?api-version=" + API, headers={"Metadata": "true"})
    document = json.loads(connection.getresponse().read().decode("utf-8"))
    connection.close()
    return document


def timed(function, *args):
    """(CPU seconds of this process, result): CPU time, unlike wall time, hardly depends on what else runs."""
    started = time.process_time()
    result = function(*args)
    return time.process_time() - started, result


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_seconds(command, env):
    """CPU seconds (user + system) of one process running command."""
    started = _children_cpu()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    elapsed = _children_cpu() - started
    if done.returncode != 0 or b'"failed"' in done.stdout[:200]:
        raise SystemExit("%s failed: %s %s" % (command[1], done.stdout[-400:], done.stderr[-400:]))
    return elapsed


def report(rounds=DEFAULT_ROUNDS):
    """The Markdown table of the largest answer's costs, median of ``rounds``."""
    root = importable_checkout()
    # pylint: disable=import-outside-toplevel
    from ansible_collections.imds.azure.plugins.filter.nginx_frontends import nginx_listeners
    from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsClient
    from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import normalize_loadbalancer, validate_facts

    document, entries = largest_answer()
    body = json.dumps(document, separators=(",", ":")).encode("utf-8")
    server = _Server(body)
    endpoint = "http://127.0.0.1:%d" % server.port
    # The module processes import the collection by name, as ansible's module runner would let them.
    env = dict(os.environ, PYTHONPATH=str(root))
    args_file = Path(tempfile.mkdtemp(prefix="imds-bench-args-")) / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"endpoint": endpoint, "retry_timeout": 0}}))
    module = str(REPO_ROOT / "plugins" / "modules" / "loadbalancer_facts.py")
    plain_module = PLAIN_READ_MODULE

    rows = {name: [] for name in ("read", "client", "normalise", "facts read", "revalidate", "planner",
                                  "process: plain read", "process: module", "startup")}
    try:
        for _round in range(rounds):
            seconds, _document = timed(plain_read, server.port)
            rows["read"].append(seconds)
            client = ImdsClient(endpoint=endpoint, timeout=30, retry_timeout=0)
            seconds, fetched = timed(client.get_json, "loadbalancer", API)
            rows["client"].append(seconds)
            seconds, facts = timed(normalize_loadbalancer, fetched, API)
            rows["normalise"].append(seconds)
            rows["facts read"].append(rows["client"][-1] + seconds)
            cached = json.loads(json.dumps(facts))
            seconds, _facts = timed(validate_facts, cached)
            rows["revalidate"].append(seconds)
            seconds, _plan = timed(nginx_listeners, cached)
            rows["planner"].append(seconds)
            rows["process: plain read"].append(process_seconds([sys.executable, str(plain_module), str(args_file)], env))
            rows["process: module"].append(process_seconds([sys.executable, module, str(args_file)], env))
            rows["startup"].append(process_seconds([sys.executable, "-c", STARTUP], env))
    finally:
        server.stop()

    lines = ["## Largest answer (`benchmarks/large_answer.py`)", ""]
    median = {name: statistics.median(values) for name, values in rows.items()}
    lines.append("Largest answer: %d bytes, %d distinct entries (%d inbound rules, %d outbound rules, %d public IPs); "
                 "median of %d rounds on %s, Python %s.\n" % (
                     len(body), entries, len(document["loadbalancer"]["inboundRules"]),
                     len(document["loadbalancer"]["outboundRules"]), len(document["loadbalancer"]["publicIpAddresses"]),
                     rounds, os.uname().machine, sys.version.split()[0]))
    lines.append("| step | CPU seconds | ratio |")
    lines.append("|---|---|---|")
    for name in ("read", "client", "normalise", "facts read", "revalidate", "planner"):
        lines.append("| %s | %.3f | %.2f x read |" % (name, median[name], median[name] / median["read"]))
    for name in ("process: plain read", "process: module"):
        lines.append("| %s | %.3f | %.2f x plain-read process |" % (
            name, median[name], median[name] / median["process: plain read"]))
    lines.append("| process: module without start-up | %.3f | %.2f x plain-read module without start-up |" % (
        median["process: module"] - median["startup"], (median["process: module"] - median["startup"])
        / (median["process: plain read"] - median["startup"])))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    print(report(parser.parse_args().rounds))


if __name__ == "__main__":
    main()
