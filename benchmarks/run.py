# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DESCRIPTION = """What imds.azure costs on a fleet, measured side by side in one run.

    python benchmarks/run.py                 # N = 10 and 50 hosts, 5 rounds, writes benchmarks/RESULTS.md
    python benchmarks/run.py --sizes 10 --rounds 3 --no-write
    python benchmarks/run.py all             # and the parts large-answer (benchmarks/large_answer.py),
                                             # role-render (benchmarks/role_render.py),
                                             # eda-source (benchmarks/eda_source.py)
                                             # and drain (benchmarks/maintenance_drain.py)
    python benchmarks/run.py all --quick     # 3 hosts, 1 round: shows every part runs; writes nothing

Every host of the fleet is this machine (ansible_connection=local) with an
IMDS of its own from tools/imds_emulator.py --fleet. One round runs every
case once per fleet size, in an order that rotates from round to round; the
tables show medians. Cases:

    a  ansible.builtin.ping
    b  imds.azure.loadbalancer_facts
    c  the same facts by hand: ansible.builtin.uri + ansible.builtin.set_fact
    d  gather_facts with facts_modules "smart" alone, and "smart" plus the module
       with gather_facts' parallel option off and on
    e  the module with its default endpoint on a host that is not an Azure VM,
       inside a network namespace of its own (unshare -n: 169.254.169.254 is
       unreachable there and nothing leaves the machine), next to a in the same
       kind of namespace
    h  reference: a module that does only the IMDS request with http.client
       and returns the status, the floor for any module built on http.client

Also: one run of a module on its own (the AnsiballZ payload the controller
sends, started with python: CPU time and peak memory), and the time the
nginx_frontends role's filter and template take for 1, 100 and 1,000 inbound
rules. Nothing here asserts on time; the numbers are for reading.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from support.ansible_env import ansible_environment, tool_path
from support.collection import importable_checkout
from support.emulator import start_fleet
from support.fleet import fleet_scenarios, host_name, loadbalancer_document, write_json
from support.paths import REPO_ROOT

import eda_source
import large_answer
import maintenance_drain
import role_render

BENCHMARKS = REPO_ROOT / "benchmarks"
PLAYBOOKS = BENCHMARKS / "playbooks"
DIAGNOSTIC_MODULES = BENCHMARKS / "modules"
TEMPLATE = REPO_ROOT / "roles" / "nginx_frontends" / "templates" / "nginx.conf.j2"
RESULTS = BENCHMARKS / "RESULTS.md"

TARGETS = {
    "b/a": ("<=", 1.08),
    "c/b": (">=", 1.25),
    "e/a": ("<=", 1.08),
}
RENDER_SIZES = (1, 100, 1000)
# How the default stdout callback reports a failed host.
FAILED_HOST = re.compile(r"^fatal: \[[^\]]+\]: FAILED!", re.MULTILINE)
# Cases whose runs may fail on some hosts without stopping the benchmark
# (parallel fact gathering; see probe_parallel_all_facts).
MAY_FAIL = ("d2",)
RUN_TIMEOUT = 900.0


class Case(NamedTuple):
    """One way of getting the facts, timed on every fleet size."""

    label: str
    playbook: Path
    environment: dict
    in_namespace: bool = False


def define_cases():
    """Case name -> Case; the playbooks are benchmarks/playbooks/*.yml."""
    def play(name):
        return PLAYBOOKS / (name + ".yml")

    smart = {"ANSIBLE_FACTS_MODULES": "smart"}
    with_module = {"ANSIBLE_FACTS_MODULES": "smart,imds.azure.loadbalancer_facts"}
    return {
        "a": Case("ansible.builtin.ping", play("ping"), {}),
        "b": Case("imds.azure.loadbalancer_facts", play("module"), {}),
        "c": Case("uri + set_fact by hand", play("diy"), {}),
        "d0": Case("gather_facts: smart, gather_subset min", play("gather_min"), smart),
        "d1": Case("gather_facts: smart + module, gather_subset min, parallel: false", play("gather_min_serial"), with_module),
        "d2": Case("gather_facts: smart + module, gather_subset min, parallel: true", play("gather_min_parallel"), with_module),
        "d0all": Case("gather_facts: smart, all facts", play("gather_all"), smart),
        "d1all": Case("gather_facts: smart + module, all facts, parallel: false", play("gather_all_serial"), with_module),
        "x1": Case("diagnostic: the same facts, static, no imports, no request", play("static_facts"), {}),
        "x2": Case("diagnostic: imports the module_utils, returns nothing", play("imports_only"), {}),
        "h": Case("reference: only the IMDS request, with http.client", play("request_only"), {}),
        "a_ns": Case("ansible.builtin.ping, in a network namespace", play("ping"), {}, True),
        "e": Case("module, default endpoint, not Azure, in a network namespace", play("module"), {}, True),
    }


# --------------------------------------------------------------------------- environment

def benchmark_environment(workdir, collections_path, forks):
    """The tests' ansible environment, with the benchmark's forks and the default stdout callback."""
    return ansible_environment(workdir, collections_path, {"ANSIBLE_FORKS": str(forks),
                                                           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"})


def link_collection():
    """A collections path whose imds.azure is this checkout, next to a diagnostic collection."""
    root = importable_checkout()
    write_diagnostic_collection(root / "ansible_collections" / "diagnostic" / "imds")
    return root


def write_diagnostic_collection(path):
    """diagnostic.imds: the modules of benchmarks/modules, static_facts with the facts of one host."""
    # pylint: disable-next=import-outside-toplevel
    from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import normalize_loadbalancer
    facts = normalize_loadbalancer(loadbalancer_document(1), "2020-10-01")
    modules = path / "plugins" / "modules"
    modules.mkdir(parents=True, exist_ok=True)
    (path / "galaxy.yml").write_text("namespace: diagnostic\nname: imds\nversion: 0.0.1\nreadme: README.md\nauthors: [x]\n",
                                     encoding="utf-8")
    for source in sorted(DIAGNOSTIC_MODULES.glob("*.py")):
        text = source.read_text(encoding="utf-8")
        if source.stem == "static_facts":
            text = text.replace("\nFACTS = {}\n", "\nFACTS = %r\n" % (facts,))
        (modules / source.name).write_text(text, encoding="utf-8")


def write_inventory(path, names, endpoints=None):
    hosts = {}
    for name in names:
        hosts[name] = {"imds_endpoint": endpoints[name]} if endpoints else {}
    inventory = {"all": {"hosts": hosts, "vars": {"ansible_connection": "local",
                                                  "ansible_python_interpreter": sys.executable}}}
    return write_json(path, inventory)


def network_namespace_works():
    """True when `unshare -n` gives a namespace with nothing but a loopback interface."""
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "-n", "--", "cat", "/proc/net/dev"], capture_output=True, text=True,
                              timeout=30, check=False)
    except OSError:
        return False
    if done.returncode != 0:
        return False
    interfaces = [line.split(":")[0].strip() for line in done.stdout.splitlines()[2:] if ":" in line]
    return interfaces == ["lo"]


def run_playbook(playbook, inventory, env, namespace=False, check=True):
    command = [tool_path("ansible-playbook"), "-i", str(inventory), str(playbook)]
    if namespace:
        command = ["unshare", "-n", "--"] + command
    cpu_before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, check=False)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    failed_hosts = len(FAILED_HOST.findall(done.stdout))
    if check and done.returncode != 0:
        raise SystemExit("%s failed (exit %d):\n%s\n%s" % (" ".join(command), done.returncode,
                                                           done.stdout[-4000:], done.stderr[-4000:]))
    return elapsed, cpu, failed_hosts


def _children_cpu():
    """User + system CPU seconds of every waited-for descendant so far (ansible-playbook, its forks, the modules)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- measurements

def verify(inventories, env, namespace_ok):
    """Before timing anything: the hand-made facts equal the module's, and e really finds no Azure."""
    run_playbook(PLAYBOOKS / "same_facts.yml", inventories["fleet"][min(inventories["fleet"])], env)
    if namespace_ok:
        run_playbook(PLAYBOOKS / "not_azure.yml", inventories["plain"][min(inventories["plain"])], env, namespace=True)


def measure_fleet(cases, sizes, rounds, inventories, env, namespace_ok, progress):
    """{"wall" | "cpu": {(case, size): [seconds of each round]}, "failed": {(case, size): [hosts failed]}}."""
    times = {metric: {(case, size): [] for case in cases for size in sizes} for metric in ("wall", "cpu", "failed")}
    order = [case for case in cases if namespace_ok or not cases[case].in_namespace]
    for round_number in range(rounds):
        # Rotate the order so that no case always runs first or right after another.
        shift = round_number % len(order)
        rotated = order[shift:] + order[:shift]
        for size in sizes:
            for case in rotated:
                chosen = cases[case]
                inventory = inventories["plain" if chosen.in_namespace else "fleet"][size]
                elapsed, cpu, failed = run_playbook(chosen.playbook, inventory, dict(env, **chosen.environment),
                                                    namespace=chosen.in_namespace, check=case not in MAY_FAIL)
                times["wall"][(case, size)].append(elapsed)
                times["cpu"][(case, size)].append(cpu)
                times["failed"][(case, size)].append(failed)
                progress("round %d/%d  N=%-3d %-6s %6.2f s wall %6.2f s CPU %s" % (
                    round_number + 1, rounds, size, case, elapsed, cpu, "(%d hosts failed)" % failed if failed else ""))
    return times


def probe_parallel_all_facts(inventory, env):
    """Run gather_facts with all of setup's facts and the module in parallel once: (hosts failed, why)."""
    playbook = PLAYBOOKS / "gather_all_parallel.yml"
    probe_env = dict(env, ANSIBLE_FACTS_MODULES="smart,imds.azure.loadbalancer_facts",
                     ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    done = subprocess.run([tool_path("ansible-playbook"), "-i", str(inventory), str(playbook)], env=probe_env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return -1, "no report (exit %d)" % done.returncode
    failed, reasons = 0, set()
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for result in task.get("hosts", {}).values():
                if result.get("failed"):
                    failed += 1
                    for module, module_result in result.get("failed_modules", {}).items():
                        reasons.add("%s: %s" % (module, module_result.get("msg")))
    return failed, "; ".join(sorted(reasons))


def child_usage(command, env):
    """(CPU seconds, peak resident memory in KiB) of one child process, from wait4()."""
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,  # pylint: disable=consider-using-with
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = process.stdout.read()
    process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    process.stdout.close()
    process.stderr.close()
    if process.returncode != 0:
        raise SystemExit("%s failed: %s" % (" ".join(command), output[-2000:]))
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def build_payload(workdir, env, name, module, args, namespace=False):
    """The AnsiballZ payload the controller sends to a host for this module and these arguments.

    One ad-hoc run against localhost with ANSIBLE_KEEP_REMOTE_FILES, so the
    file is exactly what a managed host receives: the module and every
    module_utils it imports, as source, in a zip inside a Python script.
    """
    remote = workdir / ("payload-" + name)
    command = [tool_path("ansible"), "localhost", "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=" + sys.executable, "-m", module]
    if args:
        command += ["-a", json.dumps(args)]
    if namespace:
        command = ["unshare", "-n", "--"] + command
    done = subprocess.run(command, env=dict(env, ANSIBLE_KEEP_REMOTE_FILES="1", ANSIBLE_REMOTE_TEMP=str(remote)),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    payloads = sorted(remote.glob("*/AnsiballZ_*.py"))
    if done.returncode != 0 or len(payloads) != 1:
        raise SystemExit("building the payload of %s failed (exit %d):\n%s"
                         % (module, done.returncode, done.stdout[-2000:]))
    return payloads[0]


def measure_direct_runs(workdir, env, endpoint, big_endpoint, namespace_ok, repeats):
    """Each module's AnsiballZ payload run with python, outside ansible-playbook: time, CPU and peak RSS."""
    # Label -> (module, arguments, inside a network namespace)
    runs = {
        "ansible.builtin.ping": ("ansible.builtin.ping", {}, False),
        "reference: only the IMDS request, with http.client": ("diagnostic.imds.request_only",
                                                               {"endpoint": endpoint}, False),
        "loadbalancer_facts, 3 rules": ("imds.azure.loadbalancer_facts", {"endpoint": endpoint}, False),
        "loadbalancer_facts, 1,000 rules": ("imds.azure.loadbalancer_facts", {"endpoint": big_endpoint}, False),
        "loadbalancer_facts, not Azure, in a network namespace": ("imds.azure.loadbalancer_facts", {}, True),
    }
    if not namespace_ok:
        runs = {label: run for label, run in runs.items() if not run[2]}
    commands = {}
    for index, (label, (module, args, namespace)) in enumerate(runs.items()):
        payload = build_payload(workdir, env, str(index), module, args, namespace)
        commands[label] = (["unshare", "-n", "--"] if namespace else []) + [sys.executable, str(payload)]
    child_env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    samples = {label: ([], [], []) for label in commands}
    for _repeat in range(repeats):
        for label, command in commands.items():  # interleaved, like the fleet runs
            started = time.perf_counter()
            cpu, peak = child_usage(command, child_env)
            samples[label][0].append(time.perf_counter() - started)
            samples[label][1].append(cpu)
            samples[label][2].append(peak)
        time.sleep(0.25)  # stay under the emulated IMDS limit of 5 requests a second
    return {label: (statistics.median(walls), statistics.median(cpus), max(peaks))
            for label, (walls, cpus, peaks) in samples.items()}


def many_rules_document(count):
    rules = [{"frontendIpAddress": "20.60.%d.%d" % (index // 250, index % 250 + 1), "protocol": "tcp",
              "frontendPort": 80, "backendPort": 10000 + index, "privateIpAddress": "10.20.0.4"}
             for index in range(count)]
    return {"loadbalancer": {"publicIpAddresses": [], "inboundRules": rules,
                             "outboundRules": [{"frontendIpAddress": "20.60.255.1", "privateIpAddress": "10.20.0.4"}]}}


def measure_render(collections_path, repeats):
    """The role's filter (nginx_listeners) and template, in process, for growing rule counts."""
    # pylint: disable=import-outside-toplevel
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template
    from ansible_collections.imds.azure.plugins.filter.nginx_frontends import nginx_listeners
    from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import normalize_loadbalancer

    template_text = TEMPLATE.read_text(encoding="utf-8")
    main = {
        "user": "www-data", "worker_processes": "auto", "worker_connections": "1024", "pid_path": "/run/nginx.pid",
        "error_log": "/var/log/nginx/error.log", "access_log": "/var/log/nginx/access.log",
        "mime_types_path": "/etc/nginx/mime.types", "main_includes": ["/etc/nginx/modules-enabled/*.conf"],
        "http_includes": ["/etc/nginx/conf.d/*.conf"], "stream_includes": [],
    }
    results = {}
    for count in RENDER_SIZES:
        facts = normalize_loadbalancer(many_rules_document(count), "2020-10-01")
        plan_times, render_times, lines = [], [], 0
        for _repeat in range(repeats):
            started = time.perf_counter()
            plan = nginx_listeners(facts, default_site={"root": "/var/www/html"}, health_path="/healthz")
            plan_times.append(time.perf_counter() - started)
            templar = Templar(loader=DataLoader(), variables={
                "nginx_frontends__plan": plan, "nginx_frontends__main": main, "ansible_managed": "Ansible managed"})
            started = time.perf_counter()
            text = templar.template(trust_as_template(template_text), escape_backslashes=False,
                                    overrides={"trim_blocks": True})
            render_times.append(time.perf_counter() - started)
            lines = text.count("\n")
        results[count] = (statistics.median(plan_times), statistics.median(render_times), lines)
    return results


# --------------------------------------------------------------------------- report

def machine():
    def first(path, prefix):
        try:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip().strip('"')
        except OSError:
            pass
        return "unknown"

    import ansible  # pylint: disable=import-outside-toplevel
    from ansible.release import __version__ as core_version  # pylint: disable=import-outside-toplevel
    del ansible
    memory_kib = first("/proc/meminfo", "MemTotal").split()[0]
    return {
        "CPU": first("/proc/cpuinfo", "model name"),
        "Cores": str(os.cpu_count()),
        "Memory": "%.1f GiB" % (int(memory_kib) / 1024 / 1024) if memory_kib.isdigit() else "unknown",
        "OS": first("/etc/os-release", "PRETTY_NAME="),
        "Kernel": platform.release(),
        "Python": platform.python_version(),
        "ansible-core": core_version,
    }


def ratio_line(name, value):
    if name not in TARGETS:
        return "%.2f" % value
    operator, target = TARGETS[name]
    met = value <= target if operator == "<=" else value >= target
    return "%.2f (target %s %.2f: %s)" % (value, operator, target, "met" if met else "MISSED")


def _fleet_table(add, cases, sizes, medians, namespace_ok):
    header = "| case | " + " | ".join("N=%d: run / per host" % size for size in sizes)
    if len(sizes) > 1:
        header += " | marginal per host (N=%d to %d)" % (sizes[0], sizes[-1])
    add(header + " |")
    add("|" + "---|" * (len(sizes) + 1 + (1 if len(sizes) > 1 else 0)))
    for case, chosen in cases.items():
        if chosen.in_namespace and not namespace_ok:
            continue
        cells = ["%s: %s" % (case, chosen.label)]
        for size in sizes:
            run = medians[(case, size)]
            cells.append("%.2f s / %.0f ms" % (run, 1000 * run / size))
        if len(sizes) > 1:
            cells.append("%.0f ms" % (1000 * _marginal(medians, case, sizes)))
        add("| " + " | ".join(cells) + " |")


def _marginal(medians, case, sizes):
    return (medians[(case, sizes[-1])] - medians[(case, sizes[0])]) / (sizes[-1] - sizes[0])


def _overhead(medians, top, bottom, size):
    return "%+.0f%% wall, %+.0f%% CPU" % (100 * (medians["wall"][(top, size)] / medians["wall"][(bottom, size)] - 1),
                                          100 * (medians["cpu"][(top, size)] / medians["cpu"][(bottom, size)] - 1))


def _ratio_pairs(namespace_ok):
    pairs = [("b/a", "b", "a"), ("c/b", "c", "b"), ("h/a", "h", "a"), ("b/h", "b", "h")]
    if namespace_ok:
        pairs.append(("e/a", "e", "a_ns"))
    return pairs + [("d1/d0", "d1", "d0"), ("d2/d0", "d2", "d0"), ("d1all/d0all", "d1all", "d0all")]


@dataclass
class FleetRun:
    """What one run of the fleet part measured, and under which settings."""

    cases: dict
    sizes: list
    rounds: int
    forks: int
    namespace_ok: bool
    times: dict          # see measure_fleet
    parallel_all: dict   # size -> (hosts failed, why), see probe_parallel_all_facts
    direct: dict         # label -> (wall, CPU, peak RSS), see measure_direct_runs
    render: dict         # rule count -> (plan, render, config lines), see measure_render
    started_at: str
    loads: tuple         # load average at start and end
    elapsed: float
    command: str


def build_report(run):
    """The fleet part of RESULTS.md, in Markdown."""
    cases, sizes, rounds, forks, times = run.cases, run.sizes, run.rounds, run.forks, run.times
    namespace_ok, direct, render, parallel_all = run.namespace_ok, run.direct, run.render, run.parallel_all
    medians = {metric: {key: statistics.median(values) for key, values in times[metric].items() if values}
               for metric in ("wall", "cpu")}
    lines = []
    add = lines.append
    add("## Fleet runs (median of %d rounds, forks %d)" % (rounds, forks))
    add("")
    add("Wall time of the ansible-playbook run, and per host:")
    add("")
    _fleet_table(add, cases, sizes, medians["wall"], namespace_ok)
    add("")
    add("CPU time (user + system) of ansible-playbook and everything it started, and per host:")
    add("")
    _fleet_table(add, cases, sizes, medians["cpu"], namespace_ok)
    add("")
    add("## Ratios")
    add("")
    columns = ["wall N=%d" % size for size in sizes] + ["CPU N=%d" % size for size in sizes]
    if len(sizes) > 1:
        columns += ["wall marginal", "CPU marginal"]
    add("| ratio | " + " | ".join(columns) + " |")
    add("|" + "---|" * (len(columns) + 1))
    for name, top, bottom in _ratio_pairs(namespace_ok):
        cells = [name]
        for metric in ("wall", "cpu"):
            for size in sizes:
                cells.append(ratio_line(name, medians[metric][(top, size)] / medians[metric][(bottom, size)]))
        if len(sizes) > 1:
            for metric in ("wall", "cpu"):
                bottom_marginal = _marginal(medians[metric], bottom, sizes)
                cells.append(ratio_line(name, _marginal(medians[metric], top, sizes) / bottom_marginal)
                             if bottom_marginal > 0 else "n/a")
        add("| " + " | ".join(cells) + " |")
    add("")
    add("Where b - a goes, per host (CPU, marginal from N=%d to %d, and per host at N=%d):" % (
        sizes[0], sizes[-1], sizes[-1]) if len(sizes) > 1 else "Where b - a goes, per host (CPU, N=%d):" % sizes[-1])
    add("")
    for text, top, bottom in (("returning the facts (x1 - a)", "x1", "a"),
                              ("importing the collection's module_utils, without http.client (x2 - a)", "x2", "a"),
                              ("http.client and one request, nothing else (h - a)", "h", "a"),
                              ("the collection's own code on top of that (b - h)", "b", "h"),
                              ("all of it (b - a)", "b", "a")):
        per_host = (medians["cpu"][(top, sizes[-1])] - medians["cpu"][(bottom, sizes[-1])]) / sizes[-1]
        if len(sizes) > 1:
            add("- %s: %.0f ms marginal, %.0f ms at N=%d" % (
                text, 1000 * (_marginal(medians["cpu"], top, sizes) - _marginal(medians["cpu"], bottom, sizes)),
                1000 * per_host, sizes[-1]))
        else:
            add("- %s: %.0f ms" % (text, 1000 * per_host))
    add("")
    add("d, gathering the module's facts in gather_facts next to smart (setup), costs per run:")
    add("")
    for size in sizes:
        add("- N=%d, gather_subset min: parallel: false %s, parallel: true %s; all facts, parallel: false %s" % (
            size, _overhead(medians, "d1", "d0", size), _overhead(medians, "d2", "d0", size),
            _overhead(medians, "d1all", "d0all", size)))
    for (case, size), failures in sorted(times["failed"].items()):
        if any(failures):
            add("- N=%d, %s: hosts failed in each round: %s (their time counts as it was)" % (
                size, case, ", ".join(map(str, failures))))
    for size, (failed, reason) in sorted(parallel_all.items()):
        add("- N=%d, all facts, parallel: true (run once, not timed): %d of %d hosts failed%s" % (
            size, failed, size, (": " + reason) if reason else ""))
    if not namespace_ok:
        add("")
        add("e was not measured: `unshare -n` is not available here (it needs root or user namespaces).")
    add("")
    add("## One module run, started directly")
    add("")
    add("The AnsiballZ payload that the controller sends to a host, run with python on its own (no ansible-playbook):")
    add("the same source files, compiled from the same zip, as on a managed host.")
    add("")
    add("| run | wall time (median) | CPU time (median) | CPU / ping | peak RSS (max) |")
    add("|---|---|---|---|---|")
    ping_cpu = direct["ansible.builtin.ping"][1]
    for name, (wall, cpu, peak) in direct.items():
        add("| %s | %.0f ms | %.0f ms | %.2f | %.1f MiB |" % (name, 1000 * wall, 1000 * cpu, cpu / ping_cpu, peak / 1024))
    add("")
    add("## nginx_frontends: plan (filter) and render (template), in process")
    add("")
    add("| inbound rules | nginx_listeners filter | template render | config lines |")
    add("|---|---|---|---|")
    for count, (plan, render_time, line_count) in render.items():
        add("| %s | %.1f ms | %.1f ms | %d |" % ("{:,}".format(count), 1000 * plan, 1000 * render_time, line_count))
    add("")
    add("## Machine")
    add("")
    for key, value in machine().items():
        add("- %s: %s" % (key, value))
    add("- Date: %s" % run.started_at)
    add("- Load average (1 min) at start and end: %.2f, %.2f" % run.loads)
    add("- Benchmark duration: %.0f s; command: `%s`" % (run.elapsed, run.command))
    return "\n".join(lines) + "\n"


RESULTS_HEADER = """# Benchmark results

Written by `python benchmarks/run.py PART...` (its --help says what each case
runs): each part's figures sit between its `benchmark part` markers, and a
rerun of one part replaces only those; the notes outside them are kept.
Every host is this machine, reached with the local connection, each with its
own emulated IMDS; wall times include ansible-playbook's own start-up, so the
"marginal per host" column (the slope between the two fleet sizes) shows the
cost of one more host without it. CPU times count ansible-playbook and every
process it started; they depend less than wall times on whatever else the
machine is doing (the load average includes the benchmark's own forks). The
analysis of these numbers is in docs/fleet.md, "Cost on a fleet".

"""


def run_fleet_part(sizes, rounds, forks, command):
    """Every case on every fleet size, the direct module runs and the in-process render: a FleetRun."""
    started_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_at_start = os.getloadavg()[0]
    clock = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="imds-azure-bench-"))
    emulators = None
    try:
        collections_path = link_collection()
        scenarios = fleet_scenarios(sizes[-1])
        scenarios["big"] = {"description": "1,000 inbound rules", "loadbalancer": many_rules_document(1000)}
        emulators = start_fleet(workdir, scenarios)
        names = [host_name(index) for index in range(1, sizes[-1] + 1)]
        inventories = {"fleet": {}, "plain": {}}
        for size in sizes:
            inventories["fleet"][size] = write_inventory(workdir / ("fleet-%d.json" % size), names[:size], emulators.endpoints)
            inventories["plain"][size] = write_inventory(workdir / ("plain-%d.json" % size), names[:size])
        env = benchmark_environment(workdir, collections_path, forks)
        cases = define_cases()
        namespace_ok = network_namespace_works()

        progress("checking that the cases compute what they should")
        verify(inventories, env, namespace_ok)
        progress("warming up")
        for case in ("a", "b"):
            run_playbook(cases[case].playbook, inventories["fleet"][sizes[0]], env)
        times = measure_fleet(cases, sizes, rounds, inventories, env, namespace_ok, progress)
        progress("gather_facts, all facts, parallel: true")
        parallel_all = {size: probe_parallel_all_facts(inventories["fleet"][size], env) for size in sizes}
        progress("direct module runs")
        direct = measure_direct_runs(workdir, env, emulators.endpoints[names[0]], emulators.endpoints["big"],
                                     namespace_ok, repeats=max(3 if rounds == 1 else 15, 3 * rounds))
        progress("nginx render")
        render = measure_render(collections_path, repeats=max(1 if rounds == 1 else 5, rounds))
        return FleetRun(cases=cases, sizes=sizes, rounds=rounds, forks=forks, namespace_ok=namespace_ok, times=times,
                        parallel_all=parallel_all, direct=direct, render=render, started_at=started_at,
                        loads=(load_at_start, os.getloadavg()[0]), elapsed=time.monotonic() - clock, command=command)
    finally:
        if emulators is not None:
            emulators.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def progress(message):
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- results file

PART_START = "<!-- benchmark part: %s -->"
PART_END = "<!-- end of benchmark part: %s -->"
PARTS = ("fleet", "large-answer", "role-render", "eda-source", "drain")


def replace_part(results, name, text):
    """RESULTS.md with part ``name`` replaced by ``text`` (appended when absent); the other parts stay as they are."""
    start, end = PART_START % name, PART_END % name
    block = "%s\n%s%s\n" % (start, text if text.endswith("\n") else text + "\n", end)
    if start in results and end in results:
        before, rest = results.split(start, 1)
        return before + block + rest.split(end, 1)[1].removeprefix("\n")
    if not results:
        results = RESULTS_HEADER
    return results.rstrip("\n") + "\n\n" + block


def main(argv=None):
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("parts", nargs="*", choices=PARTS + ("all",), default=["fleet"],
                        help="what to run: fleet (the default), large-answer (benchmarks/large_answer.py), "
                             "role-render (benchmarks/role_render.py), eda-source (benchmarks/eda_source.py), "
                             "drain (benchmarks/maintenance_drain.py), or all of them")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50], help="fleet sizes (default: 10 50)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every case (default: 5)")
    parser.add_argument("--forks", type=int, default=10, help="ansible forks (default: 10)")
    parser.add_argument("--quick", action="store_true",
                        help="a short run that shows every part works: 3 hosts, 1 round, few repeats; writes nothing")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file (default: benchmarks/RESULTS.md)")
    parser.add_argument("--no-write", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    parts = PARTS if "all" in args.parts else tuple(dict.fromkeys(args.parts))
    if args.quick:
        args.sizes, args.rounds, args.no_write = [3], 1, True
    sizes = sorted(set(args.sizes))
    if sizes[0] < 1 or args.rounds < 1 or args.forks < 1:
        parser.error("sizes, rounds and forks must be positive")

    reports = {}
    if "fleet" in parts:
        command = "python benchmarks/run.py --sizes %s --rounds %d --forks %d" % (
            " ".join(map(str, sizes)), args.rounds, args.forks)
        reports["fleet"] = build_report(run_fleet_part(sizes, args.rounds, args.forks, command))
    if "large-answer" in parts:
        progress("largest answer")
        reports["large-answer"] = large_answer.report(rounds=1 if args.quick else large_answer.DEFAULT_ROUNDS)
    if "role-render" in parts:
        progress("nginx_frontends at scale")
        reports["role-render"] = role_render.report((100,) if args.quick else (1000, 5000), repeats=1 if args.quick else 3)
    if "eda-source" in parts:
        progress("event-driven source under ansible-rulebook")
        reports["eda-source"] = (eda_source.report(interval=2, idle_seconds=10, rounds=1) if args.quick
                                 else eda_source.report())
    if "drain" in parts:
        progress("the drain before maintenance, event-driven and by the timer, in front of nginx")
        reports["drain"] = maintenance_drain.report(rounds=1 if args.quick else maintenance_drain.DEFAULT_ROUNDS)

    for name in parts:
        print(reports[name])
    if not args.no_write:
        results = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        for name in parts:
            results = replace_part(results, name, reports[name])
        args.output.write_text(results, encoding="utf-8")
        print("written to %s" % args.output, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
