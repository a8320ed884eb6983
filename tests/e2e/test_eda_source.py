# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The imds.azure.scheduled_events event source under the real ansible-rulebook, against the emulator.

The collection is built and installed with ansible-galaxy (the
collection_install fixture); ansible-rulebook finds the source in that
collections path, and the source imports the collection's IMDS client from
there. Each test reads what the rulebook printed (print_event) and the
emulator's request log.
"""

import copy
import datetime
import json
import signal
import time

import pytest

from support.faults import bundled_scenario, max_in_window, request_times
from support.nginx import HEALTH, PRIVATE_V4, answer, eventually, inbound, run_role
from support.nginx import scenario as nginx_scenario
from support.paths import EXAMPLES_DIR, REPO_ROOT
from support.rulebook import RulebookProcess, print_events_rulebook, tracebacks

SOURCE = "imds.azure.scheduled_events"
THIS_VM = "vm-web-01"
INTERVAL = 1.0
# How long ansible-rulebook may take to stop after SIGINT (the JVM's exit included).
STOP_SECONDS = 15.0


@pytest.fixture
def rulebook(collection_install, tmp_path_factory):
    """Factory: ``rulebook(rulebook_yaml_or_structure, ...)`` starts ansible-rulebook; stopped when the test ends."""
    started = []

    def start(content, **kwargs):
        process = RulebookProcess(tmp_path_factory.mktemp("rulebook"), collection_install.path, content, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop(signal.SIGKILL)


def source_events(events):
    """The events the source emitted (print_event adds ``meta``), without it."""
    return [{key: value for key, value in event.items() if key != "meta"} for event in events
            if event.get("meta", {}).get("source", {}).get("name") == SOURCE]


def scheduled_event(event_id, resources=(THIS_VM,), **timing):
    """One event in the emulator's scenario form: a Reboot, announced after appear_after, NotBefore not_before_in later."""
    event = {"EventId": event_id, "EventType": "Reboot", "ResourceType": "VirtualMachine", "Resources": list(resources),
             "EventStatus": "Scheduled", "Description": "Host maintenance", "EventSource": "Platform",
             "DurationInSeconds": 2}
    event.update(timing)
    return event


def scenario_with_events(*events, faults=()):
    """The documented VM (vm-web-01 behind the documented load balancer) with these scheduled events and faults."""
    scenario = bundled_scenario("scheduled-reboot")
    scenario["scheduled_events"] = {"incarnation": 1, "events": list(events)}
    scenario["faults"] = list(faults)
    return scenario


def imds_requests(imds):
    """The emulator's log of IMDS requests (the control API is not in it)."""
    return [entry for entry in imds.requests() if entry["path"].startswith("/metadata/")]


def changes_by_id(emitted):
    """{event id: [(status, change), ...]} of the scheduled events emitted."""
    found = {}
    for event in emitted:
        if "scheduled_event" in event:
            found.setdefault(event["scheduled_event"]["id"], []).append(
                (event["scheduled_event"]["status"], event["change"]))
    return found


def received_at(event):
    """When ansible-rulebook received the event (print_event's meta), as a time()."""
    stamp = event["meta"]["received_at"].rstrip("Z")
    return datetime.datetime.fromisoformat(stamp).replace(tzinfo=datetime.timezone.utc).timestamp()


def assert_stopped_cleanly(run):
    """SIGINT, as Ctrl-C or a service manager sends it: ansible-rulebook exits promptly and without a traceback."""
    code, seconds = run.stop(signal.SIGINT, timeout=STOP_SECONDS)
    assert code != -signal.SIGKILL and seconds < STOP_SECONDS, run.describe()
    assert not tracebacks(run.output()), run.describe()
    return code


def assert_at_most_one_request_per_interval(requests, until):
    """On average at most one IMDS request per interval, from the first request to ``until`` (a time())."""
    times = request_times(requests)
    assert times, "no IMDS request at all"
    span = until - times[0]
    # The first poll reads the VM name and the events: two requests before the first interval has passed.
    assert len(times) <= 2 + span / INTERVAL, (len(times), span, times)
    assert max_in_window(times, INTERVAL) <= 2, times
    return len(times), span


def test_events_are_emitted_once_per_id_and_again_when_their_status_changes(emulator, rulebook):
    imds = emulator(scenario_with_events())
    run = rulebook(print_events_rulebook({"endpoint": imds.endpoint, "interval": INTERVAL}))
    run.wait_for(lambda events: any(event["change"] == "first_read" for event in source_events(events)), 90,
                 "the first read")
    # Announced while the source runs. This VM's reboot: Scheduled, Started when NotBefore passes (in 8 s: several
    # polls see it Scheduled, even on a busy machine), gone 2 s later. Another VM of the availability set:
    # Scheduled for the rest of the test.
    imds.add_scheduled_event(scheduled_event("E-THIS-VM", not_before_in=8))
    imds.add_scheduled_event(scheduled_event("E-OTHER-VM", resources=("vm-web-02",), not_before_in=900))
    run.wait_for(lambda events: ("Started", "ended") in changes_by_id(source_events(events)).get("E-THIS-VM", []),
                 90, "the end of this VM's event")
    # A few more polls of an unchanged document, to show they emit nothing.
    polls_before = len(imds_requests(imds))
    run.wait_for(lambda _events: len(imds_requests(imds)) >= polls_before + 3, 30, "three more polls")
    stopped_at = time.time()
    assert_stopped_cleanly(run)

    emitted = source_events(run.events())
    assert changes_by_id(emitted) == {
        "E-THIS-VM": [("Scheduled", "new"), ("Started", "changed"), ("Started", "ended")],
        "E-OTHER-VM": [("Scheduled", "new")],
    }, emitted
    marks = {event["scheduled_event"]["id"]: (event["for_this_vm"], event["vm_name"]) for event in emitted
             if "scheduled_event" in event}
    assert marks == {"E-THIS-VM": (True, THIS_VM), "E-OTHER-VM": (False, THIS_VM)}
    first_reads = [event for event in emitted if event["change"] == "first_read"]
    assert len(first_reads) == 1 and first_reads[0]["scheduled_events"]["events"] == 0, emitted
    # The incarnation grows with each change the events went through.
    incarnations = [event["incarnation"] for event in emitted if "scheduled_event" in event]
    assert incarnations == sorted(incarnations) and incarnations[0] < incarnations[-1], emitted

    assert_at_most_one_request_per_interval(imds_requests(imds), stopped_at)


def test_a_failed_read_emits_nothing_and_the_source_keeps_going(emulator, rulebook):
    path = "/metadata/scheduledevents"
    imds = emulator(scenario_with_events(
        scheduled_event("E-AFTER-OUTAGE", appear_after=0, not_before_in=900),
        faults=[{"path": path, "seconds": 6, "status": 503},
                {"path": path, "count": 2, "non_json": True}]))
    run = rulebook(print_events_rulebook({"endpoint": imds.endpoint, "interval": INTERVAL, "backoff_max": 4}))
    events = run.wait_for(lambda events: changes_by_id(source_events(events)), 90, "the event, once IMDS answers")
    recovered_at = time.time()
    requests = imds_requests(imds)
    failed = [entry for entry in requests if entry["path"] == path and entry["fault"] is not None]
    assert [entry["fault"]["action"] for entry in failed][-2:] == ["non_json", "non_json"], failed
    assert len(failed) >= 3, failed
    # Nothing came out of the failed reads: the first events are those of the first good read, after it.
    assert [event["change"] for event in source_events(events)][:2] == ["new", "first_read"], events
    first_good = min(entry["time"] for entry in requests if entry["path"] == path and entry["fault"] is None)
    assert all(received_at(event) >= first_good for event in events), (first_good, events)
    # Each failed read was logged and backed off; the request rate stayed below one per interval.
    assert run.output().count("Nothing emitted") >= len(failed) - 1, run.describe()
    count, span = assert_at_most_one_request_per_interval(requests, recovered_at)
    gaps = [later - earlier for earlier, later in zip(request_times(failed), request_times(failed)[1:])]
    assert max(gaps) >= 2 * INTERVAL, gaps

    # Still polling after the outage: an event added now is emitted too, once.
    imds.add_scheduled_event(scheduled_event("E-LATER", not_before_in=900))
    run.wait_for(lambda events: "E-LATER" in changes_by_id(source_events(events)), 30, "the later event")
    assert_stopped_cleanly(run)
    assert changes_by_id(source_events(run.events())) == {
        "E-AFTER-OUTAGE": [("Scheduled", "new")], "E-LATER": [("Scheduled", "new")]}


def with_frontend(scenario, address):
    """The scenario with its first inbound rule's frontend changed to ``address``."""
    changed = copy.deepcopy(scenario)
    changed["loadbalancer"]["loadbalancer"]["inboundRules"][0]["frontendIpAddress"] = address
    return changed


def test_loadbalancer_changes_are_emitted_once_each_and_the_shutdown_action_stops_the_source_cleanly(emulator, rulebook):
    imds = emulator("documented")
    run = rulebook(print_events_rulebook(
        {"endpoint": imds.endpoint, "interval": 1, "include_loadbalancer": True, "loadbalancer_interval": 1,
         "backoff_max": 2},
        condition="event.loadbalancer is defined",
        extra_rules=[{"name": "Stop after the change", "condition": "event.loadbalancer.frontend_ips is defined and "
                      "\"50.0.0.9\" in event.loadbalancer.frontend_ips", "action": {"shutdown": {"delay": 0}}}],
    ))
    first = run.wait_for(source_events, 60, "the first load balancer event")
    assert source_events(first)[0]["change"] == "changed"
    assert "50.0.0.1" in source_events(first)[0]["loadbalancer"]["frontend_ips"]

    imds.set_scenario(with_frontend(bundled_scenario("documented"), "50.0.0.9"))
    assert run.wait(60) == 0, run.describe()
    emitted = source_events(run.events())
    # Two different documents, two events: the unchanged reads in between emitted nothing.
    assert [("50.0.0.9" in event["loadbalancer"]["frontend_ips"]) for event in emitted] == [False, True], emitted
    assert not tracebacks(run.output()), run.describe()
    assert f"{SOURCE}: stopped after" in run.output()


RECORDER_PLAYBOOK = """
- name: Record what the rulebook ran the drain playbook for
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the event that triggered this run
      ansible.builtin.copy:
        content: "{{ ansible_eda.event | to_json }}"
        dest: "%(records)s/{{ ansible_eda.event.meta.uuid }}.json"
        mode: "0600"
"""


def test_the_example_rulebook_runs_the_drain_playbook_for_this_vm_when_announced_ended_and_after_a_start(
        emulator, rulebook, tmp_path):
    """examples/eda/rulebook.yml as it is, with its drain playbook swapped for one that records each run."""
    records = tmp_path / "runs"
    records.mkdir()
    recorder = tmp_path / "record.yml"
    recorder.write_text(RECORDER_PLAYBOOK % {"records": records}, encoding="utf-8")
    imds = emulator(scenario_with_events())
    run = rulebook(EXAMPLES_DIR / "eda" / "rulebook.yml", inventory=EXAMPLES_DIR / "inventory.yml",
                   variables={"imds_endpoint": imds.endpoint, "drain_playbook": str(recorder),
                              "scheduled_events_interval": INTERVAL})

    def recorded():
        return sorted((json.loads(path.read_text(encoding="utf-8")) for path in records.glob("*.json")),
                      key=lambda event: event["meta"]["received_at"])

    def wait_for_runs(count, what):
        deadline = time.monotonic() + 120
        while len(recorded()) < count and time.monotonic() < deadline and run.running:
            time.sleep(0.5)
        assert len(recorded()) >= count, f"{what}: runs {recorded()}\n{run.describe()}"

    # Started with no event for this VM: one run, to undrain what an earlier life may have left drained.
    wait_for_runs(1, "the run after the start")
    imds.add_scheduled_event(scheduled_event("E-OTHER-VM", resources=("vm-web-02",), not_before_in=900))
    imds.add_scheduled_event(scheduled_event("E-THIS-VM", not_before_in=4))
    wait_for_runs(3, "the runs for this VM's event")
    # The other VM's event, and this one becoming Started, ran nothing; a few more polls run nothing either.
    polls = len(imds_requests(imds))
    run.wait_for(lambda _events: len(imds_requests(imds)) >= polls + 3, 30, "three more polls")
    assert_stopped_cleanly(run)
    assert [(event["change"], event.get("scheduled_event", {}).get("id")) for event in recorded()] == [
        ("first_read", None), ("new", "E-THIS-VM"), ("ended", "E-THIS-VM")], recorded()


@pytest.mark.parametrize("args, named", [
    ({"interval": 0}, "interval must be a number of seconds from 1"),
    ({"endpoint": "https://169.254.169.254"}, "endpoint must be a plain http://host[:port] URL"),
    ({"poll_every": 5}, "unknown argument(s) poll_every"),
])
def test_a_wrong_option_stops_the_source_with_a_message_that_names_it(rulebook, args, named):
    run = rulebook(print_events_rulebook(args))
    assert run.wait(60) == 1, run.describe()
    assert f"{SOURCE}: {named}" in run.output(), run.describe()
    assert not tracebacks(run.output()), run.describe()


def test_the_plugin_outside_an_installed_collection_says_how_to_install_it(rulebook, tmp_path):
    """Given as a plain file (ansible-rulebook -S DIR), the plugin cannot import the collection's client."""
    sources = tmp_path / "sources"
    sources.mkdir()
    plugin = "scheduled_events.py"
    (sources / plugin).write_bytes((REPO_ROOT / "extensions" / "eda" / "plugins" / "event_source" / plugin).read_bytes())
    rulebook_yaml = print_events_rulebook({"endpoint": "http://127.0.0.1:9"})
    rulebook_yaml[0]["sources"] = [{"scheduled_events": {"endpoint": "http://127.0.0.1:9"}}]
    run = rulebook(rulebook_yaml, extra_args=["--source-dir", str(sources)])
    assert run.wait(60) == 1, run.describe()
    assert "cannot import the imds.azure collection's IMDS client" in run.output(), run.describe()
    assert "ansible-galaxy collection install" in run.output()
    assert not tracebacks(run.output()), run.describe()


DRAINING = (503, "draining\n")


def test_the_example_rulebook_drains_this_vm_approves_once_and_puts_it_back(
        emulator, rulebook, run_playbook, nginx_instance, free_ports, lb_namespace, tmp_path):
    """examples/eda/rulebook.yml with examples/maintenance/drain.yml, in front of a real nginx."""
    port, health_port = free_ports(2)
    imds = emulator(dict(nginx_scenario(inbound("50.0.0.1", PRIVATE_V4, 80, port)),
                         scheduled_events={"incarnation": 1, "events": []}))
    site = dict(nginx_frontends_sites={str(port): {"root": str(nginx_instance.web_root)}},
                nginx_frontends_health_port=health_port)
    run_role(run_playbook, nginx_instance, imds, **site).assert_ok()

    def health():
        try:
            return answer(lb_namespace, PRIVATE_V4, health_port, "/healthz")
        except OSError as exc:  # nginx swapping its workers
            return exc

    eventually(health, lambda got: got == HEALTH, "the health path in rotation")
    host_vars = nginx_instance.role_vars(**site)
    host_vars.update(ansible_connection="local", imds_endpoint=imds.endpoint, imds_retry_timeout=0,
                     maintenance_drain_state_dir=str(tmp_path / "state"),
                     maintenance_drain_vm_name_file=str(tmp_path / "run" / "vm-name"),
                     maintenance_drain_probe_interval=1, maintenance_drain_probe_threshold=1,
                     maintenance_drain_connection_seconds=1)
    run = rulebook(EXAMPLES_DIR / "eda" / "rulebook.yml", cwd=REPO_ROOT,
                   inventory={"all": {"hosts": {"localhost": host_vars}}},
                   variables={"imds_endpoint": imds.endpoint, "scheduled_events_interval": INTERVAL})
    # The run after the start (no event for this VM) changes nothing.
    run.wait_for(lambda _events: "PLAY RECAP" in run.stdout(), 120, "the drain playbook's run after the start")
    assert health() == HEALTH and not imds.approvals()

    event_id = "3B3F8E61-2C1D-4E55-9A7B-5D0C2E6F7A10"
    imds.add_scheduled_event(scheduled_event(event_id, not_before_in=900, DurationInSeconds=3))
    drained_at = []

    def approved(_events):
        if not drained_at and health() == DRAINING:
            drained_at.append(time.time())
        return imds.approvals()

    run.wait_for(approved, 120, "the approval")
    # Drained before the approval went out (the probe saw it), and still drained while the maintenance goes on.
    (approval,) = imds.approvals()
    assert approval["event_ids"] == [event_id] and approval["status"] == 200, approval
    assert drained_at and drained_at[0] < approval["time"], (drained_at, approval)
    assert health() == DRAINING
    # The event starts (approved), ends 3 s later, and the run for its end puts the VM back in rotation.
    run.wait_for(lambda _events: health() == HEALTH, 120, "the health path back in rotation")
    assert answer(lb_namespace, PRIVATE_V4, port) == (200, nginx_instance.index_text)
    assert_stopped_cleanly(run)
    assert len(imds.approvals()) == 1
