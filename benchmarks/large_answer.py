# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function
__metaclass__ = type

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

REPO_ROOT = Path(__file__).resolve().parents[1]
MAX_BODY_BYTES = 1024 * 1024
API = "2020-10-01"


def collections_root():
    """A directory holding ansible_collections/imds/azure -> this checkout, so the collection imports by name."""
    if REPO_ROOT.parent.name == "imds" and REPO_ROOT.parent.parent.name == "ansible_collections":
        return REPO_ROOT.parents[2]
    root = Path(tempfile.mkdtemp(prefix="imds-bench-"))
    (root / "ansible_collections" / "imds").mkdir(parents=True)
    (root / "ansible_collections" / "imds" / "azure").symlink_to(REPO_ROOT)
    return root


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


class _Server(object):
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


# The floor for any module that returns this answer: an AnsibleModule that reads it with http.client and
# returns the parsed document as it came, without checking anything.
PLAIN_READ_MODULE = """
import json
from http import client
from ansible.module_utils.basic import AnsibleModule
module = AnsibleModule(argument_spec=dict(endpoint=dict(type='str'), retry_timeout=dict(type='float')))
host, port = module.params['endpoint'][len('http://'):].split(':')
connection = client.HTTPConnection(host, int(port), timeout=30)
connection.request('GET', '/metadata/loadbalancer?api-version=2020-10-01', headers={'Metadata': 'true'})
document = json.loads(connection.getresponse().read().decode('utf-8'))
module.exit_json(changed=False, ansible_facts={'azure_loadbalancer_document': document})
"""


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


def main():
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()

    root = collections_root()
    sys.path.insert(0, str(root))
    from ansible_collections.imds.azure.plugins.filter.nginx_frontends import nginx_listeners
    from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsClient
    from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import normalize_loadbalancer, validate_facts

    document, entries = largest_answer()
    body = json.dumps(document, separators=(",", ":")).encode("utf-8")
    server = _Server(body)
    endpoint = "http://127.0.0.1:%d" % server.port
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root)] + sys.path[1:]))
    args_file = Path(tempfile.mkdtemp(prefix="imds-bench-args-")) / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"endpoint": endpoint, "retry_timeout": 0}}))
    module = str(REPO_ROOT / "plugins" / "modules" / "loadbalancer_facts.py")
    plain_module = args_file.parent / "plain_read.py"
    plain_module.write_text(PLAIN_READ_MODULE)

    rows = {name: [] for name in ("read", "client", "normalise", "facts read", "revalidate", "planner",
                                  "process: plain read", "process: module", "startup")}
    try:
        for _round in range(options.rounds):
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

    median = {name: statistics.median(values) for name, values in rows.items()}
    print("Largest answer: %d bytes, %d distinct entries (%d inbound rules, %d outbound rules, %d public IPs); "
          "median of %d rounds on %s, Python %s.\n" % (
              len(body), entries, len(document["loadbalancer"]["inboundRules"]),
              len(document["loadbalancer"]["outboundRules"]), len(document["loadbalancer"]["publicIpAddresses"]),
              options.rounds, os.uname().machine, sys.version.split()[0]))
    print("| step | CPU seconds | ratio |")
    print("|---|---|---|")
    for name in ("read", "client", "normalise", "facts read", "revalidate", "planner"):
        print("| %s | %.3f | %.2f x read |" % (name, median[name], median[name] / median["read"]))
    for name in ("process: plain read", "process: module"):
        print("| %s | %.3f | %.2f x plain-read process |" % (
            name, median[name], median[name] / median["process: plain read"]))
    print("| process: module without start-up | %.3f | %.2f x plain-read module without start-up |" % (
        median["process: module"] - median["startup"], (median["process: module"] - median["startup"])
        / (median["process: plain read"] - median["startup"])))


if __name__ == "__main__":
    main()
