# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DESCRIPTION = """The event-driven way: what the imds.azure.scheduled_events source costs and how fast it reacts.

    python benchmarks/eda_source.py                  # interval 10 s, 120 s idle, 5 events; prints the tables
    python benchmarks/eda_source.py --interval 2 --idle 30 --rounds 3

The real ansible-rulebook (Java rule engine included) runs the source against
tools/imds_emulator.py on 127.0.0.1, with this checkout as the collection.

    idle        IMDS requests per minute while nothing happens, next to the
                source's budget (one per interval, 60 / interval a minute)
    failing     the same while every scheduled events read answers 503 (the
                backoff at work: fewer requests than the budget)
    approval    an event appears (the emulator's control API adds it) until the
                emulator records the approval POST, sent by a rulebook rule with
                run_module imds.azure.scheduled_event_approve: the source's
                detection (up to one interval) plus ansible-runner's module run
    drain run   an event appears until the first task of the playbook that
                examples/eda/rulebook.yml runs for it starts (a stand-in that
                records the moment: the drain itself, nginx and its waits,
                is the drain playbook's, measured by its own tests)

Events are added at a random moment of the poll cycle. Each reaction is
shown as a ratio to the interval as well. Medians of the rounds; nothing here
asserts on time.
"""

import argparse
import atexit
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from support.collection import importable_checkout
from support.emulator import start_emulator
from support.faults import bundled_scenario
from support.paths import EXAMPLES_DIR
from support.rulebook import RulebookProcess, print_events_rulebook

DEFAULT_INTERVAL = 10.0
DEFAULT_IDLE_SECONDS = 120.0
DEFAULT_ROUNDS = 5
REACTION_TIMEOUT = 180.0
THIS_VM = "vm-web-01"

RECORDER_PLAYBOOK = """
- name: Record when the drain playbook started
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the time
      ansible.builtin.copy:
        content: "{{ now(utc=true).timestamp() }}"
        dest: "%(records)s/{{ ansible_eda.event.meta.uuid }}"
        mode: "0600"
"""


def emulator_in(directory, scenario):
    directory.mkdir(parents=True, exist_ok=True)
    return start_emulator(directory, scenario)


def quiet_scenario(faults=()):
    """The documented VM with no scheduled event (and the faults given)."""
    scenario = bundled_scenario("scheduled-reboot")
    scenario["scheduled_events"] = {"incarnation": 1, "events": []}
    scenario["faults"] = list(faults)
    return scenario


def reboot_event(event_id):
    return {"EventId": event_id, "EventType": "Reboot", "ResourceType": "VirtualMachine", "Resources": [THIS_VM],
            "EventStatus": "Scheduled", "Description": "benchmark", "EventSource": "Platform",
            "DurationInSeconds": 1, "not_before_in": 900}


def imds_request_times(imds):
    return sorted(entry["time"] for entry in imds.requests() if entry["path"].startswith("/metadata/"))


def wait_until(check, timeout, what, rulebook):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if not rulebook.running:
            break
        time.sleep(0.05)
    raise SystemExit(f"{what} did not happen within {timeout:.0f}s\n{rulebook.describe()}")


# Events arrive at a random moment of the poll cycle, as on Azure, not right after the previous reaction.
_ARRIVALS = random.Random(15)


def arrive_at_random(interval):
    time.sleep(_ARRIVALS.uniform(0, interval))


def first_read_done(rulebook):
    return any(event.get("change") == "first_read" for event in rulebook.events())


def request_rate(workdir, collections, interval, seconds, faults=()):
    """IMDS requests per minute over ``seconds`` after the source's first read."""
    imds = emulator_in(workdir / "emulator", quiet_scenario(faults))
    rulebook = RulebookProcess(workdir / "rulebook", collections,
                               print_events_rulebook({"endpoint": imds.endpoint, "interval": interval}))
    try:
        if faults:
            # No read succeeds: the window starts with the first request.
            wait_until(lambda: imds_request_times(imds), REACTION_TIMEOUT, "a first request", rulebook)
        else:
            wait_until(lambda: first_read_done(rulebook), REACTION_TIMEOUT, "the first read", rulebook)
        start = time.time()
        before = len([moment for moment in imds_request_times(imds) if moment < start])
        time.sleep(seconds)
        count = len(imds_request_times(imds)) - before
        return count * 60.0 / seconds
    finally:
        rulebook.stop()
        imds.stop()


def approval_reactions(workdir, collections, interval, rounds):
    """Seconds from an event appearing to its approval POST, one per round."""
    imds = emulator_in(workdir / "emulator", quiet_scenario())
    rules = [{"name": "Approve maintenance of this VM at once",
              "condition": 'event.for_this_vm == true and event.change == "new"',
              "action": {"run_module": {"name": "imds.azure.scheduled_event_approve",
                                        "module_args": {"event_ids": ["{{ event.scheduled_event.id }}"],
                                                        "endpoint": imds.endpoint}}}}]
    rulebook = RulebookProcess(workdir / "rulebook", collections, [{
        "name": "Approve at once", "hosts": "all",
        "sources": [{"imds.azure.scheduled_events": {"endpoint": imds.endpoint, "interval": interval}}],
        "rules": rules + print_events_rulebook({})[0]["rules"],
        "match_multiple_rules": True,
    }])
    reactions = []
    try:
        wait_until(lambda: first_read_done(rulebook), REACTION_TIMEOUT, "the first read", rulebook)
        for number in range(rounds):
            event_id = f"BENCH-APPROVAL-{number}"
            arrive_at_random(interval)
            added = time.time()
            imds.add_scheduled_event(reboot_event(event_id))
            approved = wait_until(
                lambda: [entry["time"] for entry in imds.approvals() if event_id in entry["event_ids"]],
                REACTION_TIMEOUT, f"the approval of {event_id}", rulebook)
            reactions.append(approved[0] - added)
        return reactions
    finally:
        rulebook.stop()
        imds.stop()


def drain_run_reactions(workdir, collections, interval, rounds):
    """Seconds from an event appearing to the start of the playbook examples/eda/rulebook.yml runs for it."""
    records = workdir / "runs"
    records.mkdir(parents=True)
    recorder = workdir / "record.yml"
    recorder.write_text(RECORDER_PLAYBOOK % {"records": records}, encoding="utf-8")
    imds = emulator_in(workdir / "emulator", quiet_scenario())
    rulebook = RulebookProcess(workdir / "rulebook", collections, EXAMPLES_DIR / "eda" / "rulebook.yml",
                               inventory=EXAMPLES_DIR / "inventory.yml",
                               variables={"imds_endpoint": imds.endpoint, "drain_playbook": str(recorder),
                                          "scheduled_events_interval": interval})
    reactions = []
    try:
        # The start-up run (first_read, no event for this VM) comes first.
        wait_until(lambda: list(records.iterdir()), REACTION_TIMEOUT, "the run after the start", rulebook)
        for number in range(rounds):
            seen = len(list(records.iterdir()))
            arrive_at_random(interval)
            added = time.time()
            # Each round's event stays Scheduled (NotBefore 15 minutes away): one run each, the announcement's.
            imds.add_scheduled_event(reboot_event(f"BENCH-DRAIN-{number}"))
            wait_until(lambda: len(list(records.iterdir())) > seen, REACTION_TIMEOUT,
                       f"the run for event {number}", rulebook)
            started = sorted(float(path.read_text(encoding="utf-8")) for path in records.iterdir())
            reactions.append(started[seen] - added)
        return reactions
    finally:
        rulebook.stop()
        imds.stop()


def report(interval=DEFAULT_INTERVAL, idle_seconds=DEFAULT_IDLE_SECONDS, rounds=DEFAULT_ROUNDS):
    """The Markdown tables of this part."""
    load_at_start = os.getloadavg()[0]
    collections = importable_checkout()
    workdir = Path(tempfile.mkdtemp(prefix="imds-azure-bench-eda-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    budget = 60.0 / interval
    idle = request_rate(workdir / "idle", collections, interval, idle_seconds)
    failing = request_rate(workdir / "failing", collections, interval, idle_seconds,
                           faults=[{"path": "/metadata/scheduledevents", "status": 503}])
    approvals = approval_reactions(workdir / "approval", collections, interval, rounds)
    drain_runs = drain_run_reactions(workdir / "drain", collections, interval, rounds)

    lines = [
        f"## Event-driven source under ansible-rulebook (`benchmarks/eda_source.py`, interval {interval:g} s)",
        "",
        f"IMDS requests per minute over {idle_seconds:g} s; the source's budget is one per interval, "
        f"{budget:.1f} a minute:",
        "",
        "| state | requests / minute | ratio to the budget |",
        "|---|---|---|",
        f"| idle (no event) | {idle:.1f} | {idle / budget:.2f} |",
        f"| every read fails (503) | {failing:.1f} | {failing / budget:.2f} |",
        "",
        f"From an event appearing in IMDS to the reaction, median of {rounds} (min-max):",
        "",
        "| reaction | median | min - max | median / interval |",
        "|---|---|---|---|",
    ]
    for name, values in (("approval POST (rule: run_module scheduled_event_approve)", approvals),
                         ("drain playbook's first task (examples/eda/rulebook.yml)", drain_runs)):
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.1f} s | {min(values):.1f} - {max(values):.1f} s | "
                     f"{median / interval:.2f} |")
    lines += ["", f"Load average (1 min) at start and end: {load_at_start:.2f}, {os.getloadavg()[0]:.2f}.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, help="the source's poll interval")
    parser.add_argument("--idle", type=float, default=DEFAULT_IDLE_SECONDS, help="seconds of each request count")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="events per reaction")
    args = parser.parse_args(argv)
    print(report(args.interval, args.idle, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
