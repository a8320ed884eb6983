# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DESCRIPTION = """The drain before Azure maintenance, end to end: how long from an event to the drain and the approval.

    python benchmarks/maintenance_drain.py              # 3 rounds of each way, source interval 5 s
    python benchmarks/maintenance_drain.py --rounds 1 --interval 2

A real nginx (Debian's package) serves a site and the health path in a network
namespace this benchmark creates, with the VM's private IP on its loopback
interface; a probe client inside it asks the health path and the site every
50 ms. The real examples/maintenance/drain.yml (the imds.azure.maintenance_drain
role) drains and approves, against tools/imds_emulator.py on 127.0.0.1 (every
module and the event source get its endpoint), with a small wait: probe
interval 1 s x threshold 2 + connection seconds 1 = 3 s.

    a  event-driven: ansible-rulebook with examples/eda/rulebook.yml, which runs
       drain.yml when the source sees the event. Timed from the event appearing
       in the emulator (at a random moment of the source's poll cycle).
    b  the timer way: drain.yml run as the systemd unit runs it
       (ansible-playbook -i localhost, -c local drain.yml). Timed from the start
       of the run that first sees the event: the timer adds the wait for its
       next run, up to one timer interval, on top.

For each: to DRAINED, the first probe that saw the health path answer 503
(the site answering 200 all along), and to the APPROVAL, the POST the
emulator logged. Between rounds the event ends and the next run puts the VM
back in rotation. Medians and min-max of the rounds, with ratios: (approval -
drained) / the configured wait (at least 1: the flow never approves before
the wait is over), and for a, event to drained / the source's interval.
Nothing here asserts on time.
"""

import argparse
import atexit
import contextlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support.ansible_env import ansible_environment, tool_path
from support.collection import importable_checkout
from support.emulator import start_emulator
from support.nginx import (
    HEALTH, PRIVATE_V4, FreePorts, HealthProbe, answer, ensure_nginx, eventually, inbound, nginx_in, run_role,
    scenario, vm_namespace,
)
from support.paths import EXAMPLES_DIR, REPO_ROOT
from support.playbook import run_ansible_playbook, run_command
from support.rulebook import RulebookProcess

from eda_source import arrive_at_random, reboot_event, wait_until

DRAIN_PLAYBOOK = EXAMPLES_DIR / "maintenance" / "drain.yml"
RULEBOOK = EXAMPLES_DIR / "eda" / "rulebook.yml"
DEFAULT_ROUNDS = 3
DEFAULT_INTERVAL = 5.0
PROBE_INTERVAL, PROBE_THRESHOLD, CONNECTION_SECONDS = 1, 2, 1
WAIT_SECONDS = PROBE_INTERVAL * PROBE_THRESHOLD + CONNECTION_SECONDS
DRAINING = (503, "draining\n")
RUN_TIMEOUT = 300.0
# The timer's interval (examples/fleet/pull/imds-azure-drain.timer, OnUnitActiveSec=1min).
TIMER_INTERVAL = 60


class DrainBench:
    """nginx in a namespace of its own, the emulator, and the drain's variables; ``run_playbook`` as the tests'."""

    def __init__(self, workdir, collections, namespace, nginx, imds, ports):
        self.workdir, self.collections = workdir, collections
        self.namespace, self.nginx, self.imds = namespace, nginx, imds
        self.port, self.health_port = ports
        self.site_vars = dict(nginx_frontends_sites={str(self.port): {"root": str(nginx.web_root)}},
                              nginx_frontends_health_port=self.health_port)
        self.host_vars = nginx.role_vars(**self.site_vars)
        self.host_vars.update(ansible_connection="local", imds_endpoint=imds.endpoint, imds_retry_timeout=0,
                              maintenance_drain_state_dir=str(workdir / "state"),
                              maintenance_drain_vm_name_file=str(workdir / "run" / "vm-name"),
                              maintenance_drain_probe_interval=PROBE_INTERVAL,
                              maintenance_drain_probe_threshold=PROBE_THRESHOLD,
                              maintenance_drain_connection_seconds=CONNECTION_SECONDS)
        self.vars_file = workdir / "host-vars.json"
        self.vars_file.write_text(json.dumps(self.host_vars), encoding="utf-8")

    def run_playbook(self, playbook, extra_vars=None, env=None, check=False):
        return run_ansible_playbook(tool_path("ansible-playbook"), self.collections,
                                    tempfile.mkdtemp(dir=self.workdir, prefix="playbook-"), playbook,
                                    extra_vars=extra_vars, env=env, extra_args=["--check"] if check else [],
                                    timeout=RUN_TIMEOUT)

    def health(self):
        return answer(self.namespace, PRIVATE_V4, self.health_port, "/healthz")

    def wait_for_health(self, expected, what):
        eventually(self.health, lambda got: got == expected, what)

    def probe(self):
        return HealthProbe(self.namespace, self.health_port, self.port)

    def approval_time(self, event_id):
        return next((entry["time"] for entry in self.imds.approvals() if event_id in entry["event_ids"]), None)


@contextlib.contextmanager
def drain_bench(workdir, collections):
    """A DrainBench with nginx serving the site in rotation, as the regular nginx_frontends run leaves it."""
    binary = ensure_nginx()
    ports = FreePorts()(2)
    imds = start_emulator(workdir, dict(scenario(inbound("50.0.0.1", PRIVATE_V4, 80, ports[0])),
                                        scheduled_events={"incarnation": 1, "events": []}))
    try:
        with vm_namespace() as namespace, nginx_in(binary, namespace) as nginx:
            bench = DrainBench(workdir, collections, namespace, nginx, imds, ports)
            run_role(bench.run_playbook, nginx, imds, **bench.site_vars).assert_ok()
            bench.wait_for_health(HEALTH, "the health path in rotation")
            yield bench
    finally:
        imds.stop()


def round_figures(probe, since, approved):
    """(to drained, to approval, site answers other than 200) of one round, from ``since``."""
    drained = probe.first(DRAINING, since)
    if drained is None:
        raise SystemExit(f"the probe never saw the drain; last probes: {probe.record[-3:]}")
    dropped = sum(1 for when, _health, site in probe.record
                  if when >= since and (not isinstance(site, tuple) or site[0] != 200))
    return drained - since, approved - since, dropped


def event_driven_rounds(bench, interval, rounds):
    """Way a: per round (to drained, to approval, site answers not 200), from the event appearing."""
    rulebook = RulebookProcess(bench.workdir / "rulebook", bench.collections, RULEBOOK, cwd=REPO_ROOT,
                               inventory={"all": {"hosts": {"localhost": bench.host_vars}}},
                               variables={"imds_endpoint": bench.imds.endpoint,
                                          "scheduled_events_interval": interval})

    def runs_done():
        return rulebook.stdout().count("PLAY RECAP")

    figures = []
    try:
        # The run after the start (no event for this VM) changes nothing.
        wait_until(lambda: runs_done() >= 1, RUN_TIMEOUT, "the drain playbook's run after the start", rulebook)
        for number in range(rounds):
            done = runs_done()
            event_id = f"BENCH-EDA-DRAIN-{number}"
            arrive_at_random(interval)
            with bench.probe() as probe:
                added = time.time()
                bench.imds.add_scheduled_event(reboot_event(event_id))
                approved = wait_until(lambda: bench.approval_time(event_id), RUN_TIMEOUT,
                                      f"the approval of {event_id}", rulebook)
            figures.append(round_figures(probe, added, approved))
            # The approved event starts, ends a second later, and the run for its end puts the VM back.
            wait_until(lambda: runs_done() >= done + 2, RUN_TIMEOUT, f"the run after the end of {event_id}", rulebook)
            bench.wait_for_health(HEALTH, "the health path back in rotation")
        return figures
    finally:
        rulebook.stop()


def timer_rounds(bench, rounds):
    """Way b: per round (to drained, to approval, site answers not 200), from the start of the timer's run."""
    # The command of examples/fleet/pull/imds-azure-drain.service, without flock, with the benchmark's variables.
    command = [tool_path("ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", "@" + str(bench.vars_file),
               str(DRAIN_PLAYBOOK)]
    workdir = bench.workdir / "timer"
    workdir.mkdir()
    environment = ansible_environment(workdir, bench.collections)

    def timer_run():
        done = run_command(command, environment, str(workdir), RUN_TIMEOUT, "the drain playbook")
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr}")

    timer_run()  # the timer's earlier runs: nothing to do (the VM name is known from here on)
    figures = []
    for number in range(rounds):
        event_id = f"BENCH-TIMER-DRAIN-{number}"
        bench.imds.add_scheduled_event(reboot_event(event_id))
        with bench.probe() as probe:
            started = time.time()
            timer_run()
        approved = bench.approval_time(event_id)
        if approved is None:
            raise SystemExit(f"the run approved nothing: {bench.imds.approvals()}")
        figures.append(round_figures(probe, started, approved))
        # The approved event starts and ends a second later; the timer's next run puts the VM back.
        eventually(lambda: bench.imds.scheduled_events()["Events"], lambda events: not events, "the end of the event")
        timer_run()
        bench.wait_for_health(HEALTH, "the health path back in rotation")
    return figures


def spread(values, unit=" s", digits=1):
    return f"{statistics.median(values):.{digits}f}{unit} ({min(values):.{digits}f} - {max(values):.{digits}f})"


def report(rounds=DEFAULT_ROUNDS, interval=DEFAULT_INTERVAL):
    """The Markdown table of this part."""
    load_at_start = os.getloadavg()[0]
    collections = importable_checkout()
    workdir = Path(tempfile.mkdtemp(prefix="imds-azure-bench-drain-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    with drain_bench(workdir, collections) as bench:
        ways = {"a": event_driven_rounds(bench, interval, rounds), "b": timer_rounds(bench, rounds)}

    columns = {"a": f"a: event-driven (ansible-rulebook, interval {interval:g} s), from the event appearing",
               "b": "b: timer run, from the start of the run that first sees the event"}
    lines = [
        "## The drain before maintenance, end to end (`benchmarks/maintenance_drain.py`)",
        "",
        f"examples/maintenance/drain.yml in front of a real nginx, wait {PROBE_INTERVAL} s x {PROBE_THRESHOLD} "
        f"+ {CONNECTION_SECONDS} s = {WAIT_SECONDS} s; median of {rounds} (min - max):",
        "",
        "| | " + " | ".join(columns.values()) + " |",
        "|---|---|---|",
    ]

    def row(name, pick, unit=" s", digits=1, only=None):
        cells = [spread([pick(figure) for figure in ways[way]], unit, digits) if only in (None, way) else "-"
                 for way in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row("to drained (the probe sees 503)", lambda figure: figure[0])
    row("to the approval (the emulator's log)", lambda figure: figure[1])
    row("approval - drained", lambda figure: figure[1] - figure[0])
    row("(approval - drained) / wait", lambda figure: (figure[1] - figure[0]) / WAIT_SECONDS, unit="", digits=2)
    row("to drained / source interval", lambda figure: figure[0] / interval, unit="", digits=2, only="a")
    dropped = {way: sum(figure[2] for figure in figures) for way, figures in ways.items()}
    lines += [
        "",
        f"Site answers other than 200 while probing: a {dropped['a']}, b {dropped['b']}. For b, the timer "
        f"adds the wait for its next run on top: up to one timer interval ({TIMER_INTERVAL} s with "
        "examples/fleet/pull/imds-azure-drain.timer).",
        "",
        f"Load average (1 min) at start and end: {load_at_start:.2f}, {os.getloadavg()[0]:.2f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="events per way")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, help="the event source's poll interval")
    parser.add_argument("--quick", action="store_true", help="one round of each way")
    args = parser.parse_args(argv)
    print(report(1 if args.quick else args.rounds, args.interval))
    return 0


if __name__ == "__main__":
    sys.exit(main())
