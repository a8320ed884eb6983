# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Every fault the emulator can inject, observed from the client side.

import http.client
import json
import socket
import threading
import time

import pytest
import imds_emulator
from support.emulator_http import METADATA, SIMPLE_LOADBALANCER, compact_json, fetch, fetch_lb, make_scenario
from support.paths import LOADBALANCER_URL_PATH

INSTANCE_PATH = "/metadata/instance?api-version=2021-02-01"


def with_faults(*faults, **overrides):
    return make_scenario(faults=list(faults), **overrides)


# -- status faults

def test_status_fault_for_a_count_then_normal_answers(start_emulator):
    emulator = start_emulator(with_faults({"path": "/metadata/loadbalancer", "count": 2, "status": 503}))
    replies = [fetch_lb(emulator) for _ignored in range(3)]
    assert [reply.status for reply in replies] == [503, 503, 200]
    assert replies[0].json() == {"error": "Internal service unavailable. Retry later"}
    assert replies[2].json() == SIMPLE_LOADBALANCER


@pytest.mark.parametrize("status, text", [
    (429, "Too many requests"),
    (503, "Internal service unavailable. Retry later"),
    (500, imds_emulator.DEFAULT_STATUS_MESSAGES[500]),
    (410, imds_emulator.DEFAULT_STATUS_MESSAGES[410]),
])
def test_status_fault_default_bodies(start_emulator, status, text):
    reply = fetch_lb(start_emulator(with_faults({"count": 1, "status": status})))
    assert reply.status == status
    assert reply.header("Content-Type") == "application/json; charset=utf-8"
    assert reply.json() == {"error": text}


def test_gone_and_server_error_bodies_say_retry(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "status": 410}, {"count": 1, "status": 500}))
    assert "70 seconds" in fetch_lb(emulator).json()["error"]
    assert "Retry" in fetch_lb(emulator).json()["error"]


@pytest.mark.parametrize("lb_error, text", [
    ("not_available", "Load Balancer metadata API isn't available right now. Retry later"),
    ("enabling", "/metadata/loadbalancer isn't currently available"),
    ("no_metadata", imds_emulator.LOADBALANCER_ERRORS["no_metadata"]),
])
def test_status_404_fault_uses_the_load_balancer_texts(start_emulator, lb_error, text):
    emulator = start_emulator(with_faults({"count": 1, "status": 404, "lb_error": lb_error}))
    reply = fetch_lb(emulator)
    assert (reply.status, reply.json()) == (404, {"error": text})
    assert fetch_lb(emulator).status == 200


def test_status_404_fault_defaults_to_not_available(start_emulator):
    reply = fetch_lb(start_emulator(with_faults({"count": 1, "status": 404})))
    assert reply.json() == {"error": imds_emulator.LOADBALANCER_ERRORS["not_available"]}


def test_status_fault_with_text_body(start_emulator):
    reply = fetch_lb(start_emulator(with_faults({"count": 1, "status": 502, "body": "upstream went away"})))
    assert (reply.status, reply.text) == (502, "upstream went away")
    assert reply.header("Content-Type") == "text/plain; charset=utf-8"


def test_status_fault_with_json_body_and_content_type(start_emulator):
    emulator = start_emulator(with_faults(
        {"count": 1, "status": 500, "body": {"error": "boom", "code": 17}},
        {"count": 1, "status": 200, "body": "<html>ok</html>", "content_type": "text/html"},
    ))
    first = fetch_lb(emulator)
    assert (first.status, first.json()) == (500, {"error": "boom", "code": 17})
    assert first.header("Content-Type") == "application/json; charset=utf-8"
    second = fetch_lb(emulator)
    assert (second.status, second.text, second.header("Content-Type")) == (200, "<html>ok</html>", "text/html")


# -- duration, order and matching

def test_seconds_window_starts_at_the_first_matching_request(start_emulator):
    emulator = start_emulator(with_faults({"seconds": 0.4, "status": 503}))
    time.sleep(0.5)  # the window has not started yet: nothing matched so far
    started = time.monotonic()
    assert fetch_lb(emulator).status == 503
    assert fetch_lb(emulator).status == 503
    time.sleep(max(0.0, started + 0.5 - time.monotonic()))
    assert fetch_lb(emulator).status == 200


def test_fault_without_duration_applies_to_every_request(start_emulator):
    emulator = start_emulator(with_faults({"status": 500}))
    assert {fetch_lb(emulator).status for _ignored in range(6)} == {500}


def test_faults_apply_in_order(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "status": 503}, {"count": 2, "status": 500}, {"count": 1, "status": 429}))
    assert [fetch_lb(emulator).status for _ignored in range(5)] == [503, 500, 500, 429, 200]


def test_fault_path_is_a_prefix_on_segment_boundaries(start_emulator):
    emulator = start_emulator(with_faults({"path": "/metadata/instance/network", "status": 503}))
    assert fetch(emulator, "/metadata/instance/network?api-version=2021-02-01").status == 503
    assert fetch(emulator, "/metadata/instance/network/interface/0?api-version=2021-02-01").status == 503
    assert fetch(emulator, "/metadata/instance/networks?api-version=2021-02-01").status == 404
    assert fetch(emulator, "/metadata/instance/compute?api-version=2021-02-01").status == 200
    assert fetch_lb(emulator).status == 200


def test_loadbalancer_fault_leaves_other_endpoints_alone(start_emulator):
    emulator = start_emulator(with_faults({"path": "/metadata/loadbalancer", "count": 1, "status": 503}))
    assert fetch(emulator, INSTANCE_PATH).status == 200
    assert fetch(emulator, "/metadata/versions").status == 200
    assert fetch_lb(emulator).status == 503
    assert fetch_lb(emulator).status == 200


def test_requests_failing_the_header_checks_do_not_consume_faults(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "status": 503}))
    assert fetch_lb(emulator, headers={}).status == 400
    assert fetch_lb(emulator).status == 503
    assert fetch_lb(emulator).status == 200


def test_request_log_names_the_fault(start_emulator):
    emulator = start_emulator(with_faults({"path": "/metadata/loadbalancer", "count": 1, "status": 503}, {"count": 1, "delay": 0}))
    fetch_lb(emulator)
    fetch_lb(emulator)
    fetch_lb(emulator)
    assert [entry["fault"] for entry in emulator.requests()] == [{"index": 0, "action": "status"}, {"index": 1, "action": "delay"}, None]


# -- slow and broken answers

def test_delay_holds_the_answer_back(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "delay": 1.5}))
    with pytest.raises(TimeoutError):
        fetch_lb(emulator, timeout=0.3)
    assert fetch_lb(emulator, timeout=5).json() == SIMPLE_LOADBALANCER


def test_delayed_answer_is_the_normal_one(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "delay": 0.2}))
    reply = fetch_lb(emulator, timeout=5)
    assert (reply.status, reply.json()) == (200, SIMPLE_LOADBALANCER)


def test_hang_blocks_neither_other_clients_nor_shutdown(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "hang": True}))
    outcome = {}

    def hanging_client():
        try:
            outcome["reply"] = fetch_lb(emulator, timeout=10)
        except (http.client.HTTPException, OSError) as exc:  # the connection is closed when the emulator stops
            outcome["error"] = exc

    client = threading.Thread(target=hanging_client)
    client.start()
    while not emulator.requests():
        time.sleep(0.01)
    assert emulator.requests()[0]["status"] == 0
    assert fetch_lb(emulator).status == 200  # served while the first one hangs
    emulator.stop()
    client.join(5)
    assert not client.is_alive()
    assert "reply" not in outcome
    assert isinstance(outcome["error"], (http.client.RemoteDisconnected, ConnectionError))


def test_hang_until_the_client_gives_up(start_emulator):
    emulator = start_emulator(with_faults({"count": 2, "hang": True}))
    for _ignored in range(2):
        with pytest.raises(TimeoutError):
            fetch_lb(emulator, timeout=0.3)
    assert fetch_lb(emulator).status == 200


def test_drip_sends_the_normal_body_slowly(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "drip": 0.01}, loadbalancer={"loadbalancer": {"inboundRules": []}}))
    expected = compact_json({"loadbalancer": {"inboundRules": []}})
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw:
        raw.sendall(b"GET " + LOADBALANCER_URL_PATH.encode() + b" HTTP/1.1\r\nHost: imds\r\nMetadata: true\r\nConnection: close\r\n\r\n")
        received = b""
        while b"\r\n\r\n" not in received:
            received += raw.recv(4096)
        head, _ignored, body = received.partition(b"\r\n\r\n")
        pieces = [body] if body else []
        while True:
            piece = raw.recv(4096)
            if not piece:
                break
            pieces.append(piece)
    assert b"Content-Length: %d" % len(expected) in head
    assert b"".join(pieces) == expected
    assert len(pieces) > 1  # the body did not arrive in one piece


def test_drip_answer_reads_complete_through_http_client(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "drip": 0.002}))
    assert fetch_lb(emulator).json() == SIMPLE_LOADBALANCER


def test_truncate_announces_the_full_length_but_sends_less(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "truncate": 10}))
    full = compact_json(SIMPLE_LOADBALANCER)
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        connection.request("GET", LOADBALANCER_URL_PATH, headers=METADATA)
        response = connection.getresponse()
        assert int(response.getheader("Content-Length")) == len(full)
        with pytest.raises(http.client.IncompleteRead) as caught:
            response.read()
        assert caught.value.partial == full[:10]
    finally:
        connection.close()
    assert fetch_lb(emulator).status == 200


def test_reset_closes_the_connection_with_rst(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "reset": True}))
    with pytest.raises(ConnectionResetError):
        fetch_lb(emulator)
    assert emulator.requests()[0]["status"] == 0
    assert fetch_lb(emulator).status == 200


def test_redirect_answers_302_with_location(start_emulator):
    emulator = start_emulator(with_faults({"count": 1, "redirect": "http://127.0.0.2:1/elsewhere"}))
    reply = fetch_lb(emulator)
    assert reply.status == 302
    assert reply.header("Location") == "http://127.0.0.2:1/elsewhere"


@pytest.mark.parametrize("size", [2, 13, 14, 300000])
def test_oversize_sends_valid_json_of_the_given_size(start_emulator, size):
    emulator = start_emulator(with_faults({"count": 1, "oversize": size}))
    reply = fetch_lb(emulator)
    assert reply.status == 200
    assert len(reply.body) == size == int(reply.header("Content-Length"))
    assert isinstance(json.loads(reply.body), dict)


def test_non_json_sends_html_labelled_as_json(start_emulator):
    reply = fetch_lb(start_emulator(with_faults({"count": 1, "non_json": True})))
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json; charset=utf-8"
    assert reply.text.lstrip().startswith("<")
    with pytest.raises(json.JSONDecodeError):
        reply.json()


def test_content_type_fault_keeps_the_body_but_changes_its_type(start_emulator):
    reply = fetch_lb(start_emulator(with_faults({"count": 1, "content_type": "text/html"})))
    assert (reply.status, reply.header("Content-Type")) == (200, "text/html")
    assert reply.json() == SIMPLE_LOADBALANCER


def test_content_type_fault_applies_to_error_answers_too(start_emulator):
    reply = fetch(start_emulator(with_faults({"count": 1, "content_type": "text/html"})), "/metadata/loadbalancer")
    assert (reply.status, reply.header("Content-Type")) == (400, "text/html")


# -- validation

@pytest.mark.parametrize("fault, complaint", [
    ({"count": 1}, "exactly one action"),
    ({"status": 503, "hang": True}, "exactly one action"),
    ({"stauts": 503}, "'stauts'"),
    ({"status": 503, "count": 1, "seconds": 2}, "not both"),
    ({"status": 503, "count": 0}, "'count'"),
    ({"status": 503, "count": True}, "'count'"),
    ({"status": 503, "seconds": -1}, "'seconds'"),
    ({"status": 99}, "'status'"),
    ({"status": "503"}, "'status'"),
    ({"status": 503, "path": "metadata"}, "'path'"),
    ({"delay": "1s"}, "'delay'"),
    ({"hang": False}, "'hang'"),
    ({"drip": -0.1}, "'drip'"),
    ({"truncate": -1}, "'truncate'"),
    ({"oversize": 1}, "'oversize'"),
    ({"redirect": ""}, "'redirect'"),
    ({"non_json": 1}, "'non_json'"),
    ({"reset": "yes"}, "'reset'"),
    ({"delay": 1, "body": "x"}, "'body'"),
    ({"status": 503, "lb_error": "enabling"}, "'lb_error'"),
    ({"status": 404, "lb_error": "later"}, "'lb_error'"),
    ({"hang": True, "content_type": "text/html"}, "'content_type'"),
    ({"content_type": ""}, "'content_type'"),
    ("503", "JSON object"),
])
def test_invalid_faults_are_rejected_with_a_clear_message(fault, complaint):
    with pytest.raises(imds_emulator.ScenarioError) as caught:
        imds_emulator.validate_scenario(make_scenario(faults=[fault]))
    assert "faults[0]" in str(caught.value)
    assert complaint in str(caught.value)
