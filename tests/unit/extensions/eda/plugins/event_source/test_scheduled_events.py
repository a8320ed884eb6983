# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduled_events event source: its pure parts, and its reads against a scripted IMDS.

The plugin is loaded as ansible-rulebook loads it, as a file (it is not a
module of a package). ansible-rulebook uses runpy.run_path; here importlib
does the same, since ansible-test's collection loader claims every path of
the collection for itself and runpy would take the file for a package.
"""

import asyncio
import importlib.util
import logging
import os

import pytest
import yaml

from ansible_collections.imds.azure.tests.unit.utils.imds_client import FakeTime
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer

PLUGIN_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), *([os.pardir] * 6),
                           "extensions", "eda", "plugins", "event_source", "scheduled_events.py")


def load_plugin(path):
    spec = importlib.util.spec_from_file_location("scheduled_events_source", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return vars(module)


PLUGIN = load_plugin(os.path.normpath(PLUGIN_PATH))

EventTracker = PLUGIN["EventTracker"]
LoadBalancerTracker = PLUGIN["LoadBalancerTracker"]
ScheduledEventsReader = PLUGIN["ScheduledEventsReader"]
SettingsError = PLUGIN["SettingsError"]
SourceStopped = PLUGIN["SourceStopped"]
collections_root = PLUGIN["collections_root"]
failure_backoff = PLUGIN["failure_backoff"]
next_poll_delay = PLUGIN["next_poll_delay"]
source_settings = PLUGIN["source_settings"]
plugin_main = PLUGIN["main"]

VM = "vm-web-01"


def key(event):
    return (event["id"], event["status"])


def event(event_id, status="Scheduled", resources=(VM,)):
    return {"id": event_id, "status": status, "type": "Reboot", "resources": list(resources)}


def mine(events, vm_name=VM):
    return [item for item in events if vm_name in item["resources"]]


def changes(emitted):
    """(id, status, change) of each emitted scheduled event; the first_read summary is checked on its own."""
    return [(item["scheduled_event"]["id"], item["scheduled_event"]["status"], item["change"]) for item in emitted
            if "scheduled_event" in item]


# --------------------------------------------------------------------------- settings

def test_settings_defaults():
    settings = source_settings({})
    assert settings == {
        "endpoint": None, "interval": 10.0, "backoff_max": 60.0, "vm_name": None, "only_this_vm": False,
        "include_loadbalancer": False, "loadbalancer_interval": 60.0, "timeout": 150.0, "retry_timeout": 0.0,
    }


def test_settings_accept_rulebook_values():
    settings = source_settings({"interval": "2", "only_this_vm": "yes", "include_loadbalancer": True,
                                "vm_name": " vm-web-01 ", "eda_feedback_queue": object()})
    assert (settings["interval"], settings["only_this_vm"], settings["include_loadbalancer"], settings["vm_name"]) \
        == (2.0, True, True, "vm-web-01")


def test_settings_empty_endpoint_means_the_azure_address():
    assert source_settings({"endpoint": " "})["endpoint"] is None
    assert source_settings({"endpoint": "http://127.0.0.1:8080 "})["endpoint"] == "http://127.0.0.1:8080"


def test_settings_never_wait_less_than_the_interval():
    settings = source_settings({"interval": 120, "backoff_max": 30, "loadbalancer_interval": 5})
    assert settings["backoff_max"] == 120 and settings["loadbalancer_interval"] == 120


@pytest.mark.parametrize("args, named", [
    ({"interval": 0.5}, "interval"),
    ({"interval": "often"}, "interval"),
    ({"interval": True}, "interval"),
    ({"interval": float("nan")}, "interval"),
    ({"timeout": 0}, "timeout"),
    ({"retry_timeout": -1}, "retry_timeout"),
    ({"only_this_vm": "maybe"}, "only_this_vm"),
    ({"vm_name": ""}, "vm_name"),
    ({"vm_name": "x" * 257}, "vm_name"),
    ({"endpoint": 8080}, "endpoint"),
    ({"backoff_max": 0}, "backoff_max"),
    ({"intervall": 5}, "intervall"),
])
def test_settings_refuse_bad_values_and_name_them(args, named):
    with pytest.raises(SettingsError, match=named):
        source_settings(args)


def test_the_documentation_lists_every_option_with_its_default():
    documentation = yaml.safe_load(PLUGIN["DOCUMENTATION"])
    defaults = source_settings({})
    assert sorted(documentation["options"]) == sorted(defaults)
    for name, option in documentation["options"].items():
        assert option["description"], name
        assert option.get("default") == defaults[name], name
    rulesets = yaml.safe_load(PLUGIN["EXAMPLES"])
    for ruleset in rulesets:
        for source in ruleset["sources"]:
            source_settings(source["imds.azure.scheduled_events"])


# --------------------------------------------------------------------------- what to emit

def test_each_event_is_emitted_once_per_id_and_status():
    tracker = EventTracker(key)
    first = [event("A"), event("B", resources=("vm-other",))]
    assert changes(tracker.update(first, mine(first), VM, 2)) == [("A", "Scheduled", "new"), ("B", "Scheduled", "new")]
    assert tracker.update(first, mine(first), VM, 2) == []

    started = [event("A", "Started"), event("B", resources=("vm-other",))]
    emitted = tracker.update(started, mine(started), VM, 3)
    assert changes(emitted) == [("A", "Started", "changed")]
    assert emitted[0]["incarnation"] == 3 and emitted[0]["for_this_vm"] is True and emitted[0]["vm_name"] == VM
    assert tracker.update(started, mine(started), VM, 3) == []


def test_the_first_read_is_summed_up_once():
    tracker = EventTracker(key)
    document = [event("A"), event("B", resources=("vm-other",))]
    emitted = tracker.update(document, mine(document), VM, 7)
    assert emitted[-1] == {"scheduled_events": {"incarnation": 7, "vm_name": VM, "events": 2, "for_this_vm": 1},
                           "change": "first_read"}
    assert [item["change"] for item in tracker.update([], [], VM, 8)] == ["ended", "ended"]
    # An empty first document still says the source has read it.
    assert EventTracker(key).update([], [], VM, 1) == [
        {"scheduled_events": {"incarnation": 1, "vm_name": VM, "events": 0, "for_this_vm": 0},
         "change": "first_read"}]


def test_an_event_that_leaves_the_document_ends_once():
    tracker = EventTracker(key)
    tracker.update([event("A"), event("B")], [event("A"), event("B")], VM, 2)
    emitted = tracker.update([event("B")], [event("B")], VM, 4)
    assert changes(emitted) == [("A", "Scheduled", "ended")]
    assert emitted[0]["incarnation"] == 4
    assert tracker.update([event("B")], [event("B")], VM, 4) == []
    # An id that comes back is new again.
    assert changes(tracker.update([event("A"), event("B")], [event("A"), event("B")], VM, 5)) \
        == [("A", "Scheduled", "new")]


def test_events_of_other_vms_are_marked_or_left_out():
    document = [event("A", resources=("VM-WEB-01", "vm-other")), event("B", resources=("vm-other",))]
    for_vm = [document[0]]
    marked = EventTracker(key).update(document, for_vm, VM, 2)
    assert [(item["scheduled_event"]["id"], item["for_this_vm"]) for item in marked[:-1]] == [("A", True), ("B", False)]
    only = EventTracker(key, only_this_vm=True).update(document, for_vm, VM, 2)
    assert [(item["scheduled_event"]["id"], item["for_this_vm"]) for item in only[:-1]] == [("A", True)]
    assert only[-1]["scheduled_events"]["events"] == 2 and only[-1]["scheduled_events"]["for_this_vm"] == 1


def test_an_id_twice_in_one_document_is_emitted_once():
    document = [event("A"), event("A", "Started")]
    assert changes(EventTracker(key).update(document, mine(document), VM, 2)) == [("A", "Scheduled", "new")]


def test_loadbalancer_facts_are_emitted_when_they_change():
    tracker = LoadBalancerTracker()
    facts = {"available": True, "frontend_ips": ["50.0.0.1"]}
    assert tracker.update(facts) == [{"loadbalancer": facts, "change": "changed"}]
    assert tracker.update(dict(facts)) == []
    changed = {"available": True, "frontend_ips": ["50.0.0.2"]}
    assert tracker.update(changed) == [{"loadbalancer": changed, "change": "changed"}]


# --------------------------------------------------------------------------- when to poll

def test_failure_backoff_doubles_up_to_the_cap():
    assert [failure_backoff(10, failures, 60) for failures in range(5)] == [10, 20, 40, 60, 60]
    assert failure_backoff(10, 10 ** 6, 60) == 60
    # A cap below the interval never makes polls come faster than the interval.
    assert failure_backoff(10, 3, 5) == 10


def test_polls_keep_their_rhythm_when_reads_are_fast():
    # Started at 0, the third poll started at 20 with 3 requests sent and took 0.1 s: next at 30.
    assert next_poll_delay(20.1, 20.0, 0.0, 3, 10, 0, 60) == pytest.approx(9.9)


def test_polls_wait_out_requests_beyond_one_per_interval():
    # One poll that also read the VM name and the load balancer sent 3 requests: the next waits 3 intervals.
    assert next_poll_delay(0.2, 0.0, 0.0, 3, 10, 0, 60) == pytest.approx(29.8)


def test_a_slow_read_is_not_followed_by_a_burst():
    # The first read took 120 s (the service being enabled): the next poll still waits an interval, not 0.
    assert next_poll_delay(120.0, 0.0, 0.0, 1, 10, 0, 60) == 0.0
    assert next_poll_delay(120.5, 120.0, 0.0, 2, 10, 0, 60) == pytest.approx(9.5)


def test_failed_polls_back_off_from_when_they_ended():
    assert next_poll_delay(100.0, 95.0, 0.0, 5, 10, 1, 60) == 20
    assert next_poll_delay(100.0, 95.0, 0.0, 5, 10, 4, 60) == 60


def test_requests_stay_at_one_per_interval_on_average_whatever_the_reads_cost():
    """Simulated: reads that send 1 to 4 requests, fail or succeed; the average never exceeds 1 per interval."""
    interval, now, requests, failures = 10.0, 0.0, 0, 0
    for poll in range(200):
        started = now
        cost = 1 + poll % 4
        requests += cost
        now += 0.05 * cost
        failures = failures + 1 if poll % 7 < 3 else 0
        assert requests <= 4 + now / interval
        now += next_poll_delay(now, started, 0.0, requests, interval, failures, 60)
    assert requests <= 1 + now / interval


# --------------------------------------------------------------------------- where the collection is

def test_collections_root_of_an_installed_plugin():
    installed = os.path.join(os.sep, "usr", "share", "ansible", "collections", "ansible_collections", "imds", "azure",
                             "extensions", "eda", "plugins", "event_source", "scheduled_events.py")
    assert collections_root(installed) == os.path.join(os.sep, "usr", "share", "ansible", "collections")


@pytest.mark.parametrize("path", [
    os.path.join(os.sep, "src", "imds-azure", "extensions", "eda", "plugins", "event_source", "scheduled_events.py"),
    os.path.join(os.sep, "ansible_collections", "other", "azure", "extensions", "eda", "plugins", "event_source",
                 "scheduled_events.py"),
    "scheduled_events.py",
])
def test_collections_root_of_a_plugin_outside_a_collection(path):
    assert collections_root(path) is None


# --------------------------------------------------------------------------- reads, against a scripted IMDS

def scheduled_events_answer(incarnation=2, *events):
    """A 200 answer in Azure's shape, with events given as (id, status, resources)."""
    return Answer(body={"DocumentIncarnation": incarnation, "Events": [
        {"EventId": event_id, "EventStatus": status, "EventType": "Reboot", "ResourceType": "VirtualMachine",
         "Resources": list(resources), "NotBefore": "Thu, 22 Jul 2021 04:50:17 GMT", "Description": "Host update",
         "EventSource": "Platform", "DurationInSeconds": 5}
        for event_id, status, resources in events]})


VM_NAME_ANSWER = Answer(body=VM, content_type="text/plain; charset=utf-8")


def reader_for(server, fake_time, **args):
    return ScheduledEventsReader(source_settings(dict({"endpoint": server.endpoint, "interval": 1}, **args)),
                                 clock=fake_time.clock)


def test_a_failed_read_emits_nothing_and_the_next_good_one_does(server, caplog):
    server.queue(VM_NAME_ANSWER, Answer(status=503, body={"error": "Internal service unavailable. Retry later"}),
                 scheduled_events_answer(2, ("A", "Scheduled", (VM,))))
    reader = reader_for(server, FakeTime())
    with caplog.at_level(logging.WARNING):
        assert reader.poll() == []
    assert reader.failures == 1 and "503" in caplog.text
    emitted = reader.poll()
    assert changes(emitted) == [("A", "Scheduled", "new")] and emitted[0]["for_this_vm"] is True
    assert emitted[-1]["change"] == "first_read" and reader.failures == 0
    # The VM name was read once, before the first scheduled events read.
    assert [request["target"].split("?")[0] for request in server.requests] == [
        "/metadata/instance/compute/name", "/metadata/scheduledevents", "/metadata/scheduledevents"]


@pytest.mark.parametrize("answer", [
    Answer(body={"DocumentIncarnation": 2, "Events": "not a list"}),
    Answer(body=[1, 2, 3]),
    Answer(body=b"<html>not json</html>", content_type="text/html"),
])
def test_an_answer_of_unknown_shape_emits_nothing_and_changes_nothing(server, caplog, answer):
    server.queue(VM_NAME_ANSWER, scheduled_events_answer(2, ("A", "Scheduled", (VM,))), answer,
                 scheduled_events_answer(2, ("A", "Scheduled", (VM,))))
    reader = reader_for(server, FakeTime())
    assert changes(reader.poll()) == [("A", "Scheduled", "new")]
    with caplog.at_level(logging.WARNING):
        assert reader.poll() == []
    assert "Nothing emitted" in caplog.text
    # What was known before the bad answer still holds: A is not new again, nor ended.
    assert reader.poll() == []


def test_the_loadbalancer_is_read_at_its_own_interval(server):
    fake_time = FakeTime()
    documented = {"loadbalancer": {"publicIpAddresses": [], "outboundRules": [], "inboundRules": [
        {"frontendIpAddress": "50.0.0.1", "protocol": "tcp", "frontendPort": 80, "backendPort": 443,
         "privateIpAddress": "10.1.0.4"}]}}
    server.queue(VM_NAME_ANSWER, scheduled_events_answer(1), Answer(body=documented), scheduled_events_answer(1),
                 scheduled_events_answer(1), Answer(body=documented))
    reader = reader_for(server, fake_time, include_loadbalancer=True, loadbalancer_interval=10)
    first = reader.poll()
    assert [item["change"] for item in first] == ["first_read", "changed"]
    assert first[1]["loadbalancer"]["frontend_ips"] == ["50.0.0.1"]
    fake_time.now += 5
    assert reader.poll() == []
    fake_time.now += 5
    # Due again, and the same document: nothing to emit.
    assert reader.poll() == []
    assert [request["target"].split("?")[0] for request in server.requests].count("/metadata/loadbalancer") == 2


def test_stop_ends_a_read_waiting_to_retry(server):
    server.queue(Answer(status=503, body={"error": "Internal service unavailable. Retry later"}))
    reader = reader_for(server, FakeTime(), vm_name=VM, retry_timeout=60)
    reader.stop()
    with pytest.raises(SourceStopped):
        reader.poll()
    assert len(server.requests) == 1


def test_main_emits_and_stops_when_cancelled(server):
    server.queue(VM_NAME_ANSWER, scheduled_events_answer(3, ("A", "Started", (VM,)), ("B", "Scheduled", ("vm-2",))))

    async def run():
        queue = asyncio.Queue()
        task = asyncio.ensure_future(plugin_main(queue, {"endpoint": server.endpoint, "interval": 1}))
        received = [await asyncio.wait_for(queue.get(), 10) for _number in range(3)]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return received

    received = asyncio.run(run())
    assert [(item.get("scheduled_event", {}).get("id"), item.get("for_this_vm"), item["change"]) for item in received] \
        == [("A", True, "new"), ("B", False, "new"), (None, None, "first_read")]
    assert received[0]["incarnation"] == 3


@pytest.mark.parametrize("args", [{"interval": 0}, {"endpoint": "https://169.254.169.254"}])
def test_main_refuses_bad_arguments_before_any_request(args):
    with pytest.raises(ValueError, match="imds.azure.scheduled_events: "):
        asyncio.run(plugin_main(asyncio.Queue(), args))
