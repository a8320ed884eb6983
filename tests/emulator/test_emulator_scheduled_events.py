# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# /metadata/scheduledevents over HTTP: the document, its lifecycle, the
# approval POST, the first-call delay, and the control API around them.

import email.utils
import http.client
import json
import threading
import time

import pytest
import imds_emulator
from support.emulator_http import (SCHEDULED_EVENTS_URL_PATH, control, fetch, fetch_events, make_scenario, post_events,
                                   start_requests)
from support.paths import TOOLS_DIR

JSON_TYPE = "application/json; charset=utf-8"
API_VERSION_ERROR = "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds"
AZURE_EVENT_KEYS = ["EventId", "EventStatus", "EventType", "ResourceType", "Resources", "NotBefore", "Description", "EventSource",
                    "DurationInSeconds"]
VM_NAME = imds_emulator.DEFAULT_INSTANCE["compute"]["name"]


def reboot(event_id="EV-1", **overrides):
    event = {"EventId": event_id, "EventType": "Reboot", "Resources": [VM_NAME], "DurationInSeconds": 2}
    event.update(overrides)
    return event


def with_events(*events, faults=(), rate_limit=None, **settings):
    """A test scenario with these events; keyword arguments other than faults and rate_limit go into scheduled_events."""
    return make_scenario(scheduled_events=dict(settings, events=list(events)), faults=list(faults), rate_limit=rate_limit)


def document_of(emulator):
    reply = fetch_events(emulator)
    assert reply.status == 200, reply.body
    return reply.json()


def statuses(document):
    return {event["EventId"]: event["EventStatus"] for event in document["Events"]}


def wait_for_document(emulator, predicate, timeout=10.0):
    """Ask until the served document satisfies predicate; return that document."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = document_of(emulator)
        if predicate(document):
            return document
        time.sleep(0.05)
    raise AssertionError(f"the document never got there; last: {document}")


# -- the document

def test_without_the_key_the_document_is_empty_on_every_version(start_emulator):
    emulator = start_emulator(make_scenario())
    for version in imds_emulator.SCHEDULED_EVENTS_API_VERSIONS:
        reply = fetch(emulator, "/metadata/scheduledevents?api-version=" + version)
        assert reply.status == 200
        assert reply.header("Content-Type") == JSON_TYPE
        assert reply.body == b'{"DocumentIncarnation":1,"Events":[]}'


def test_an_event_is_served_with_exactly_azures_keys(start_emulator):
    event = reboot(Description="Planned host maintenance", EventSource="User", appear_after=0, not_before_in=900)
    emulator = start_emulator(with_events(event, incarnation=7))
    before = time.time()
    document = document_of(emulator)
    assert list(document) == ["DocumentIncarnation", "Events"]
    assert document["DocumentIncarnation"] == 7
    [served] = document["Events"]
    assert list(served) == AZURE_EVENT_KEYS
    assert {key: served[key] for key in AZURE_EVENT_KEYS if key != "NotBefore"} == {
        "EventId": "EV-1", "EventStatus": "Scheduled", "EventType": "Reboot", "ResourceType": "VirtualMachine", "Resources": [VM_NAME],
        "Description": "Planned host maintenance", "EventSource": "User", "DurationInSeconds": 2}
    # RFC 1123 in GMT, 900 s after the event appeared, in whole seconds.
    assert served["NotBefore"].endswith(" GMT")
    not_before = email.utils.parsedate_to_datetime(served["NotBefore"]).timestamp()
    assert before + 899 <= not_before <= time.time() + 901
    assert email.utils.formatdate(not_before, usegmt=True) == served["NotBefore"]


@pytest.mark.parametrize("event_type, notice", sorted(imds_emulator.MINIMUM_NOTICE_SECONDS.items()))
def test_default_notice_is_the_least_azure_gives_for_the_type(start_emulator, event_type, notice):
    emulator = start_emulator(with_events({"EventId": "E", "EventType": event_type, "Resources": [VM_NAME]}))
    served = document_of(emulator)["Events"][0]
    assert (served["EventStatus"], served["EventSource"], served["DurationInSeconds"], served["Description"]) == ("Scheduled", "Platform", -1, "")
    seconds = email.utils.parsedate_to_datetime(served["NotBefore"]).timestamp() - time.time()
    assert notice - 5 <= seconds <= notice + 1


@pytest.mark.parametrize("not_before", ["", "Thu, 22 Jul 2038 04:50:17 GMT", "not a date"])
def test_literal_not_before_is_served_as_given(start_emulator, not_before):
    emulator = start_emulator(with_events(reboot(NotBefore=not_before)))
    served = document_of(emulator)["Events"][0]
    assert (served["NotBefore"], served["EventStatus"]) == (not_before, "Scheduled")


def test_a_literal_not_before_in_the_past_means_started(start_emulator):
    emulator = start_emulator(with_events(reboot(NotBefore="Thu, 22 Jul 2021 04:50:17 GMT", DurationInSeconds=60)))
    document = document_of(emulator)
    assert statuses(document) == {"EV-1": "Started"}
    assert document["Events"][0]["NotBefore"] == "Thu, 22 Jul 2021 04:50:17 GMT"
    assert document["DocumentIncarnation"] == 1


def test_events_of_other_vms_are_served_too(start_emulator):
    emulator = start_emulator(with_events(reboot("MINE"), reboot("GROUP", EventType="Freeze", Resources=["vm-web-02", "vm-web-03"])))
    assert [event["Resources"] for event in document_of(emulator)["Events"]] == [[VM_NAME], ["vm-web-02", "vm-web-03"]]


# -- lifecycle

def test_an_event_appears_later_and_the_incarnation_grows(start_emulator):
    emulator = start_emulator(with_events(reboot(appear_after=1)))
    assert document_of(emulator) == {"DocumentIncarnation": 1, "Events": []}
    document = wait_for_document(emulator, lambda document: document["Events"])
    assert document["DocumentIncarnation"] == 2
    assert statuses(document) == {"EV-1": "Scheduled"}


def test_approval_starts_the_event_then_it_ends_after_its_duration(start_emulator):
    emulator = start_emulator(with_events(reboot(DurationInSeconds=2)))
    scheduled = document_of(emulator)
    assert (scheduled["DocumentIncarnation"], statuses(scheduled)) == (1, {"EV-1": "Scheduled"})
    approved_at = time.monotonic()
    reply = post_events(emulator, start_requests("EV-1"))
    assert (reply.status, reply.body, reply.header("Content-Length")) == (200, b"", "0")
    started = document_of(emulator)
    assert (started["DocumentIncarnation"], statuses(started)) == (2, {"EV-1": "Started"})
    # NotBefore keeps the value it had.
    assert started["Events"][0]["NotBefore"] == scheduled["Events"][0]["NotBefore"]
    ended = wait_for_document(emulator, lambda document: not document["Events"])
    assert time.monotonic() - approved_at >= 2
    assert ended == {"DocumentIncarnation": 3, "Events": []}


def test_an_unapproved_event_starts_when_not_before_passes(start_emulator):
    # DurationInSeconds -1 (unknown): the event runs started_seconds.
    emulator = start_emulator(with_events(reboot(not_before_in=1, DurationInSeconds=-1), started_seconds=1))
    assert statuses(document_of(emulator)) == {"EV-1": "Scheduled"}
    started = wait_for_document(emulator, lambda document: statuses(document) == {"EV-1": "Started"})
    assert started["DocumentIncarnation"] == 2
    ended = wait_for_document(emulator, lambda document: not document["Events"])
    assert ended["DocumentIncarnation"] == 3


def test_an_event_that_is_started_from_the_start_ends_by_itself(start_emulator):
    emulator = start_emulator(with_events(reboot(EventStatus="Started", DurationInSeconds=1)))
    assert statuses(document_of(emulator)) == {"EV-1": "Started"}
    wait_for_document(emulator, lambda document: document == {"DocumentIncarnation": 2, "Events": []})


# -- the approval POST

def test_unknown_and_started_ids_are_ignored(start_emulator):
    emulator = start_emulator(with_events(reboot("A", DurationInSeconds=60), reboot("B", DurationInSeconds=60),
                                          reboot("LATER", appear_after=60)))
    assert post_events(emulator, start_requests("A")).status == 200
    assert document_of(emulator)["DocumentIncarnation"] == 2
    for ids in (("A",), ("NOPE",), ("LATER",), ("A", "NOPE")):
        reply = post_events(emulator, start_requests(*ids))
        assert (reply.status, reply.body) == (200, b"")
    document = document_of(emulator)
    assert (document["DocumentIncarnation"], statuses(document)) == (2, {"A": "Started", "B": "Scheduled"})


def test_one_post_can_approve_several_events_and_extra_keys_are_allowed(start_emulator):
    emulator = start_emulator(with_events(reboot("A", DurationInSeconds=60), reboot("B", DurationInSeconds=60)))
    body = {"StartRequests": [{"EventId": "A", "Note": "drained"}, {"EventId": "B"}], "Client": "test"}
    assert post_events(emulator, body, content_type="application/json; charset=utf-8").status == 200
    document = document_of(emulator)
    assert (document["DocumentIncarnation"], statuses(document)) == (3, {"A": "Started", "B": "Started"})


@pytest.mark.parametrize("body, content_type, complaint", [
    (b"{not json", "application/json", "not valid JSON"),
    (b"\xff\xfe", "application/json", "not valid JSON"),
    (b"", "application/json", "not valid JSON"),
    ([{"EventId": "EV-1"}], "application/json", "StartRequests"),
    ({}, "application/json", "StartRequests"),
    ({"StartRequests": []}, "application/json", "at least one"),
    ({"StartRequests": "EV-1"}, "application/json", "StartRequests"),
    ({"StartRequests": [{}]}, "application/json", "StartRequests[0]"),
    ({"StartRequests": [{"EventId": "EV-1"}, {"EventId": 5}]}, "application/json", "StartRequests[1]"),
    ({"StartRequests": [{"EventId": ""}]}, "application/json", "StartRequests[0]"),
    ({"StartRequests": [{"EventId": "EV-1"}]}, "text/plain", "application/json"),
    ({"StartRequests": [{"EventId": "EV-1"}]}, None, "application/json"),
])
def test_malformed_approvals_are_400_and_approve_nothing(start_emulator, body, content_type, complaint):
    emulator = start_emulator(with_events(reboot()))
    reply = post_events(emulator, body, content_type=content_type)
    assert reply.status == 400
    assert reply.header("Content-Type") == JSON_TYPE
    error = reply.json()["error"]
    assert error.startswith("Bad request.") and complaint in error
    document = document_of(emulator)
    assert (document["DocumentIncarnation"], statuses(document)) == (1, {"EV-1": "Scheduled"})


def test_approvals_log_records_every_post_with_its_answer(start_emulator):
    emulator = start_emulator(with_events(reboot(DurationInSeconds=60)))
    before = time.time()
    post_events(emulator, b"nonsense")
    post_events(emulator, start_requests("EV-1"), headers={})
    post_events(emulator, start_requests("EV-1"))
    fetch_events(emulator)
    reply = control(emulator, "GET", "scheduled-events/approvals")
    assert reply.status == 200
    approvals = reply.json()["approvals"]
    assert [(entry["status"], entry["event_ids"], entry["body"]) for entry in approvals] == [
        (400, [], None),
        (400, ["EV-1"], start_requests("EV-1")),
        (200, ["EV-1"], start_requests("EV-1")),
    ]
    assert before <= approvals[0]["time"] <= approvals[2]["time"] <= time.time()
    assert emulator.approvals() == approvals


def test_request_log_records_posts_like_gets(start_emulator):
    emulator = start_emulator(with_events(reboot()))
    fetch_events(emulator)
    post_events(emulator, start_requests("EV-1"))
    log = emulator.requests()
    assert [(entry["method"], entry["path"], entry["query"], entry["status"]) for entry in log] == [
        ("GET", "/metadata/scheduledevents", "api-version=2020-07-01", 200),
        ("POST", "/metadata/scheduledevents", "api-version=2020-07-01", 200),
    ]
    assert log[1]["headers"]["Content-Type"] == "application/json"


def test_a_fault_that_replaces_the_answer_approves_nothing(start_emulator):
    emulator = start_emulator(with_events(reboot(DurationInSeconds=60),
                                          faults=[{"path": "/metadata/scheduledevents", "count": 1, "status": 503}]))
    reply = post_events(emulator, start_requests("EV-1"))
    assert reply.status == 503
    assert statuses(document_of(emulator)) == {"EV-1": "Scheduled"}
    assert [(entry["status"], entry["event_ids"]) for entry in emulator.approvals()] == [(503, ["EV-1"])]
    # A retry goes through: approving is idempotent.
    assert post_events(emulator, start_requests("EV-1")).status == 200
    assert statuses(document_of(emulator)) == {"EV-1": "Started"}


def test_an_answer_lost_after_the_approval_still_approved(start_emulator):
    # A delayed answer is computed first: the client gives up, the event is started all the same.
    emulator = start_emulator(with_events(reboot(DurationInSeconds=60),
                                          faults=[{"path": "/metadata/scheduledevents", "count": 1, "delay": 2}]))
    with pytest.raises(TimeoutError):
        post_events(emulator, start_requests("EV-1"), timeout=0.3)
    assert statuses(document_of(emulator)) == {"EV-1": "Started"}
    assert [entry["status"] for entry in emulator.approvals()] == [200]


# -- request rules

@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_post_are_allowed(start_emulator, method):
    reply = fetch(start_emulator(make_scenario()), SCHEDULED_EVENTS_URL_PATH, method=method, body=b"{}")
    assert reply.status == 405
    assert reply.json() == {"error": f'Http method isn\'t allowed: Path = "/metadata/scheduledevents", Method = "{method}"'}


@pytest.mark.parametrize("path", ["/metadata/loadbalancer?api-version=2020-10-01", "/metadata/instance?api-version=2021-02-01",
                                  "/metadata/versions"])
def test_post_to_any_other_path_stays_405(start_emulator, path):
    emulator = start_emulator(make_scenario())
    reply = fetch(emulator, path, method="POST", headers={"Metadata": "true", "Content-Type": "application/json"},
                  body=json.dumps(start_requests("EV-1")).encode("utf-8"))
    assert reply.status == 405
    assert emulator.approvals() == []


def test_sub_paths_are_not_found(start_emulator):
    reply = fetch(start_emulator(make_scenario()), "/metadata/scheduledevents/EV-1?api-version=2020-07-01")
    assert reply.status == 404
    assert reply.json() == {"error": 'API isn\'t found: Path = "/metadata/scheduledevents/EV-1", Method = "GET"'}


@pytest.mark.parametrize("query", ["", "?api-version=", "?api-version=2021-02-01", "?api-version=2020-10-01", "?api-version=2017-08-01"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_api_version_must_be_a_scheduled_events_version(start_emulator, query, method):
    emulator = start_emulator(with_events(reboot()))
    reply = fetch(emulator, "/metadata/scheduledevents" + query, method=method,
                  headers={"Metadata": "true", "Content-Type": "application/json"}, body=json.dumps(start_requests("EV-1")).encode())
    assert reply.status == 400
    assert reply.json() == {"error": API_VERSION_ERROR, "newest-versions": ["2020-07-01", "2019-08-01", "2019-01-01"]}
    assert statuses(document_of(emulator)) == {"EV-1": "Scheduled"}


def test_the_scenario_can_offer_fewer_versions(start_emulator):
    emulator = start_emulator(with_events(api_versions=["2017-11-01", "2019-08-01"]))
    assert fetch(emulator, "/metadata/scheduledevents?api-version=2019-08-01").status == 200
    reply = fetch_events(emulator)
    assert reply.status == 400
    assert reply.json()["newest-versions"] == ["2019-08-01", "2017-11-01"]


def test_unexpected_query_parameters_are_refused(start_emulator):
    emulator = start_emulator(make_scenario())
    assert fetch(emulator, SCHEDULED_EVENTS_URL_PATH + "&format=json").status == 200
    assert fetch(emulator, SCHEDULED_EVENTS_URL_PATH + "&format=text").json()["error"].startswith('Parameter value "text"')
    assert fetch(emulator, SCHEDULED_EVENTS_URL_PATH + "&expand=all").json() == {"error": "Unexpected request. Check the query parameters and retry."}


@pytest.mark.parametrize("headers, complaint", [({}, "metadata header"), ({"Metadata": "true", "X-Forwarded-For": "203.0.113.9"}, "X-Forwarded-For")])
def test_header_rules_hold_for_get_and_post(start_emulator, headers, complaint):
    emulator = start_emulator(with_events(reboot()))
    for reply in (fetch_events(emulator, headers=headers), post_events(emulator, start_requests("EV-1"), headers=headers)):
        assert reply.status == 400
        assert complaint in reply.json()["error"]
    assert statuses(document_of(emulator)) == {"EV-1": "Scheduled"}


def test_posts_count_against_the_rate_limit(start_emulator):
    emulator = start_emulator(with_events(reboot(), rate_limit={"requests": 2, "seconds": 60}))
    assert fetch_events(emulator).status == 200
    assert post_events(emulator, start_requests("EV-1")).status == 200
    reply = post_events(emulator, start_requests("EV-1"))
    assert (reply.status, reply.json()) == (429, {"error": "Too many requests"})
    assert [entry["status"] for entry in emulator.approvals()] == [200, 429]


# -- first call delay

def test_the_first_call_waits_and_the_next_ones_do_not(start_emulator):
    emulator = start_emulator(with_events(first_call_delay=1))
    assert fetch(emulator, "/metadata/loadbalancer?api-version=2020-10-01").status == 200  # other paths are not delayed
    started = time.monotonic()
    assert fetch_events(emulator).status == 200
    first = time.monotonic() - started
    started = time.monotonic()
    assert fetch_events(emulator).status == 200
    assert first >= 1 > time.monotonic() - started
    # A reset enables the service again from scratch; a POST can be the first call too.
    emulator.reset()
    started = time.monotonic()
    assert post_events(emulator, b"not json").status == 400
    assert time.monotonic() - started >= 1


def test_requests_that_arrive_while_the_service_is_enabled_wait_with_the_first(start_emulator):
    emulator = start_emulator(with_events(first_call_delay=1.5))
    finished = {}

    def first_call():
        fetch_events(emulator)
        finished["first"] = time.monotonic()

    started = time.monotonic()
    thread = threading.Thread(target=first_call)
    thread.start()
    time.sleep(0.5)
    assert fetch_events(emulator).status == 200
    second = time.monotonic()
    thread.join(10)
    assert second - started >= 1.5
    assert finished["first"] - started >= 1.5


def test_stopping_does_not_wait_for_the_first_call(start_emulator):
    emulator = start_emulator(with_events(first_call_delay=60))
    outcome = {}

    def first_call():
        try:
            outcome["status"] = fetch_events(emulator, timeout=30).status
        except (ConnectionError, http.client.HTTPException) as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=first_call)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    emulator.stop()
    thread.join(10)
    assert time.monotonic() - started < 5
    assert "error" in outcome


def test_control_calls_are_not_delayed(start_emulator):
    emulator = start_emulator(with_events(reboot(), first_call_delay=30))
    started = time.monotonic()
    reply = control(emulator, "GET", "scheduled-events")
    assert time.monotonic() - started < 5
    assert statuses(reply.json()) == {"EV-1": "Scheduled"}


# -- control API

def test_control_document_is_the_served_one_and_is_neither_logged_nor_throttled(start_emulator):
    emulator = start_emulator(with_events(reboot(), rate_limit={"requests": 1, "seconds": 60}))
    for _ignored in range(5):
        reply = control(emulator, "GET", "scheduled-events")
        assert reply.status == 200
    assert emulator.requests() == []
    assert fetch_events(emulator).json() == reply.json() == emulator.scheduled_events()


def test_adding_an_event_keeps_everything_else(start_emulator):
    emulator = start_emulator(with_events(reboot("FIRST", DurationInSeconds=60)))
    assert post_events(emulator, start_requests("FIRST")).status == 200
    reply = control(emulator, "POST", "scheduled-events/events", reboot("ADDED", EventType="Redeploy", not_before_in=600))
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    document = document_of(emulator)
    assert (document["DocumentIncarnation"], statuses(document)) == (3, {"FIRST": "Started", "ADDED": "Scheduled"})
    assert len(emulator.approvals()) == 1 and len(emulator.requests()) == 2


def test_an_added_event_can_appear_later(start_emulator):
    emulator = start_emulator(make_scenario())
    assert control(emulator, "POST", "scheduled-events/events", reboot(appear_after=0.5)).status == 200
    assert document_of(emulator) == {"DocumentIncarnation": 1, "Events": []}
    document = wait_for_document(emulator, lambda document: document["Events"])
    assert document["DocumentIncarnation"] == 2


@pytest.mark.parametrize("event, complaint", [
    ({"EventType": "Reboot", "Resources": [VM_NAME]}, "'EventId' is missing"),
    (reboot(EventType="reboot"), "'EventType'"),
    (reboot(Resources=VM_NAME), "'Resources'"),
    (reboot(Extra=1), "'Extra'"),
    (reboot(NotBefore="", not_before_in=5), "not both"),
    (reboot("FIRST"), "exists already"),
    ([1], "JSON object"),
])
def test_an_invalid_event_is_refused(start_emulator, event, complaint):
    emulator = start_emulator(with_events(reboot("FIRST")))
    reply = control(emulator, "POST", "scheduled-events/events", event)
    assert reply.status == 400
    assert complaint in reply.json()["error"]
    assert statuses(document_of(emulator)) == {"FIRST": "Scheduled"}


def test_an_event_that_is_not_json_is_refused(start_emulator):
    reply = fetch(start_emulator(make_scenario()), "/__emulator__/scheduled-events/events", method="POST", headers={}, body=b"{")
    assert reply.status == 400
    assert "not valid JSON" in reply.json()["error"]


@pytest.mark.parametrize("method, name", [("POST", "scheduled-events"), ("POST", "scheduled-events/approvals"),
                                          ("GET", "scheduled-events/events")])
def test_control_wrong_method_is_405(start_emulator, method, name):
    assert control(start_emulator(make_scenario()), method, name).status == 405


def test_reset_and_put_start_the_scheduled_events_over(start_emulator):
    scenario = with_events(reboot("FIRST", DurationInSeconds=60))
    emulator = start_emulator(scenario)
    post_events(emulator, start_requests("FIRST"))
    control(emulator, "POST", "scheduled-events/events", reboot("ADDED"))
    assert control(emulator, "POST", "reset").status == 200
    assert emulator.approvals() == []
    assert document_of(emulator)["DocumentIncarnation"] == 1
    assert statuses(emulator.scheduled_events()) == {"FIRST": "Scheduled"}
    emulator.add_scheduled_event(reboot("ADDED"))
    assert control(emulator, "PUT", "scenario", make_scenario()).status == 200
    assert emulator.scheduled_events() == {"DocumentIncarnation": 1, "Events": []}


def test_python_api_adds_events_and_refuses_bad_ones(start_emulator):
    emulator = start_emulator(make_scenario())
    emulator.add_scheduled_event(reboot())
    assert statuses(emulator.scheduled_events()) == {"EV-1": "Scheduled"}
    with pytest.raises(imds_emulator.ScenarioError, match="exists already"):
        emulator.add_scheduled_event(reboot())


# -- scenario validation

def test_the_normalised_scenario_fills_defaults_and_can_be_sent_back(start_emulator):
    emulator = start_emulator(with_events(reboot(), reboot("LITERAL", NotBefore="")))
    scenario = control(emulator, "GET", "scenario").json()
    settings = scenario["scheduled_events"]
    assert {key: settings[key] for key in ("incarnation", "first_call_delay", "started_seconds", "api_versions")} == {
        "incarnation": 1, "first_call_delay": 0, "started_seconds": 5, "api_versions": list(imds_emulator.SCHEDULED_EVENTS_API_VERSIONS)}
    assert settings["events"][0] == dict(reboot(), EventStatus="Scheduled", ResourceType="VirtualMachine", Description="",
                                         EventSource="Platform", appear_after=0, not_before_in=900)
    assert "not_before_in" not in settings["events"][1] and settings["events"][1]["NotBefore"] == ""
    assert control(emulator, "PUT", "scenario", scenario).status == 200


@pytest.mark.parametrize("settings, complaint", [
    ([], "'scheduled_events' must be a JSON object"),
    ({"incarnaton": 1}, "'incarnaton'"),
    ({"incarnation": "1"}, "'incarnation'"),
    ({"incarnation": -1}, "'incarnation'"),
    ({"first_call_delay": -1}, "'first_call_delay'"),
    ({"started_seconds": True}, "'started_seconds'"),
    ({"api_versions": ["2020-10-01"]}, "'api_versions'"),
    ({"api_versions": []}, "'api_versions'"),
    ({"api_versions": ["2020-07-01", "2020-07-01"]}, "'api_versions'"),
    ({"events": {}}, "'events' must be a list"),
    ({"events": ["EV-1"]}, "events[0]"),
    ({"events": [reboot(), reboot()]}, "same EventId"),
    ({"events": [reboot(EventId=7)]}, "'EventId'"),
    ({"events": [reboot(EventStatus="Completed")]}, "'EventStatus'"),
    ({"events": [reboot(EventSource="Azure")]}, "'EventSource'"),
    ({"events": [reboot(ResourceType="Disk")]}, "'ResourceType'"),
    ({"events": [reboot(Resources=[])]}, "'Resources'"),
    ({"events": [reboot(Resources=[""])]}, "'Resources'"),
    ({"events": [reboot(Description=None)]}, "'Description'"),
    ({"events": [reboot(DurationInSeconds=-2)]}, "'DurationInSeconds'"),
    ({"events": [reboot(DurationInSeconds=1.5)]}, "'DurationInSeconds'"),
    ({"events": [reboot(appear_after=-1)]}, "'appear_after'"),
    ({"events": [reboot(not_before_in="soon")]}, "'not_before_in'"),
    ({"events": [reboot(NotBefore=0)]}, "'NotBefore'"),
    ({"events": [reboot(EventType="Restart")]}, "'EventType'"),
])
def test_invalid_scheduled_events_name_the_problem(settings, complaint):
    with pytest.raises(imds_emulator.ScenarioError) as caught:
        imds_emulator.validate_scenario(make_scenario(scheduled_events=settings))
    assert complaint in str(caught.value)


# -- bundled scenarios

def bundled(name):
    return json.loads((TOOLS_DIR / "scenarios" / f"{name}.json").read_text(encoding="utf-8"))


def test_scheduled_reboot_is_a_reboot_of_this_vm(start_emulator):
    raw = bundled("scheduled-reboot")
    assert raw["loadbalancer"] == bundled("documented")["loadbalancer"]
    vm_name = raw["instance"]["compute"]["name"]
    assert vm_name == bundled("documented")["instance"]["compute"]["name"] == VM_NAME
    emulator = start_emulator("scheduled-reboot")
    name_reply = fetch(emulator, "/metadata/instance/compute/name?api-version=2021-02-01&format=text")
    assert name_reply.text == vm_name
    document = document_of(emulator)
    [event] = document["Events"]
    assert (event["EventType"], event["EventStatus"], event["Resources"], event["DurationInSeconds"]) == ("Reboot", "Scheduled", [vm_name], 5)
    seconds = email.utils.parsedate_to_datetime(event["NotBefore"]).timestamp() - time.time()
    assert 890 <= seconds <= 901
    assert post_events(emulator, start_requests(event["EventId"])).status == 200
    assert statuses(document_of(emulator)) == {event["EventId"]: "Started"}


def test_scheduled_other_vm_is_a_freeze_of_another_vm_only(start_emulator):
    raw = bundled("scheduled-other-vm")
    emulator = start_emulator("scheduled-other-vm")
    [event] = document_of(emulator)["Events"]
    assert event["EventType"] == "Freeze"
    assert event["Resources"] and raw["instance"]["compute"]["name"] not in event["Resources"]


def test_scheduled_slow_start_takes_three_seconds_the_first_time(start_emulator):
    assert bundled("scheduled-slow-start")["scheduled_events"]["first_call_delay"] == 3
    emulator = start_emulator("scheduled-slow-start")
    started = time.monotonic()
    assert document_of(emulator) == {"DocumentIncarnation": 1, "Events": []}
    assert time.monotonic() - started >= 3
