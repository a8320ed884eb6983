# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The rules the emulator enforces for IMDS traffic, checked over HTTP.

import http.client
import socket
import time

import pytest
import imds_emulator
from support.emulator_http import METADATA, SIMPLE_LOADBALANCER, compact_json, fetch, fetch_lb, make_scenario
from support.paths import LOADBALANCER_URL_PATH

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
API_VERSION_ERROR = "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds"
NO_METADATA = "No load balancer metadata is found. Check if your virtual machine is using any nonbasic SKU load balancer and retry later."

INSTANCE = {
    "compute": {"name": "vm-test", "vmId": "11111111-2222-4333-8444-555555555555", "zone": "", "tagsList": [{"name": "env", "value": "ci"}]},
    "network": {"interface": [{
        "ipv4": {"ipAddress": [{"privateIpAddress": "10.1.0.4", "publicIpAddress": ""}, {"privateIpAddress": "10.1.0.5", "publicIpAddress": ""}]},
        "ipv6": {"ipAddress": []},
        "macAddress": "000D3A000001",
    }]},
}


@pytest.fixture
def emulator(start_emulator):
    return start_emulator(make_scenario(instance=INSTANCE))


# -- load balancer endpoint

def test_loadbalancer_body_is_the_scenario_document(emulator):
    reply = fetch_lb(emulator)
    assert reply.status == 200
    assert reply.json() == SIMPLE_LOADBALANCER
    assert reply.header("Content-Type") == JSON_TYPE
    assert int(reply.header("Content-Length")) == len(reply.body)


@pytest.mark.parametrize("document", [[], None, "not an object", {"loadbalancer": None}, {"unexpected": [1, 2, 3]}])
def test_loadbalancer_document_is_served_whatever_its_shape(start_emulator, document):
    emulator = start_emulator(make_scenario(loadbalancer=document))
    reply = fetch_lb(emulator)
    assert reply.status == 200
    assert reply.body == compact_json(document)


def test_missing_loadbalancer_gives_documented_404(start_emulator):
    scenario = make_scenario()
    del scenario["loadbalancer"]
    reply = fetch_lb(start_emulator(scenario))
    assert reply.status == 404
    assert reply.json() == {"error": NO_METADATA}


@pytest.mark.parametrize("error, text", [
    ("no_metadata", NO_METADATA),
    ("not_available", "Load Balancer metadata API isn't available right now. Retry later"),
    ("enabling", "/metadata/loadbalancer isn't currently available"),
])
def test_loadbalancer_error_overrides_the_document(start_emulator, error, text):
    reply = fetch_lb(start_emulator(make_scenario(loadbalancer_error=error)))
    assert reply.status == 404
    assert reply.json() == {"error": text}


def test_loadbalancer_refuses_versions_older_than_the_endpoint(emulator):
    reply = fetch(emulator, "/metadata/loadbalancer?api-version=2019-08-15")
    assert reply.status == 400
    assert reply.json() == {"error": 'Parameter value "2019-08-15" isn\'t allowed for parameter "api-version". Fix the request and retry.'}
    for version in ("2020-10-01", "2021-02-01", "2025-04-07"):
        assert fetch(emulator, "/metadata/loadbalancer?api-version=" + version).status == 200


def test_loadbalancer_accepts_format_json_but_not_text(emulator):
    assert fetch(emulator, LOADBALANCER_URL_PATH + "&format=json").status == 200
    reply = fetch(emulator, LOADBALANCER_URL_PATH + "&format=text")
    assert reply.status == 400
    assert reply.json() == {"error": 'Parameter value "text" isn\'t allowed for parameter "format". Fix the request and retry.'}


def test_loadbalancer_rejects_unexpected_query_parameters(emulator):
    reply = fetch(emulator, LOADBALANCER_URL_PATH + "&expand=all")
    assert reply.status == 400
    assert reply.json() == {"error": "Unexpected request. Check the query parameters and retry."}


# -- headers

@pytest.mark.parametrize("headers", [{}, {"Metadata": "false"}, {"Metadata": ""}, {"Metadata-Flavor": "Google"}])
def test_metadata_header_is_required(emulator, headers):
    reply = fetch_lb(emulator, headers=headers)
    assert reply.status == 400
    assert reply.json() == {"error": "Bad request. Required metadata header not specified"}


@pytest.mark.parametrize("value", ["true", "True", "TRUE"])
def test_metadata_header_value_is_case_insensitive(emulator, value):
    assert fetch_lb(emulator, headers={"Metadata": value}).status == 200


def test_x_forwarded_for_is_rejected(emulator):
    reply = fetch_lb(emulator, headers={"Metadata": "true", "X-Forwarded-For": "203.0.113.9"})
    assert reply.status == 400
    assert "X-Forwarded-For" in reply.json()["error"]


# -- api-version

@pytest.mark.parametrize("query", ["", "?api-version=", "?api-version=2016-01-01", "?api-version=latest", "?API-VERSION=2021-02-01"])
def test_missing_or_unknown_api_version_lists_the_newest(emulator, query):
    for endpoint in ("/metadata/loadbalancer", "/metadata/instance"):
        reply = fetch(emulator, endpoint + query)
        assert reply.status == 400
        assert reply.header("Content-Type") == JSON_TYPE
        # The three newest of the versions Microsoft lists, newest first.
        assert reply.json() == {"error": API_VERSION_ERROR, "newest-versions": ["2025-04-07", "2024-07-17", "2024-03-15"]}


def test_newest_versions_follow_the_scenario_list(start_emulator):
    emulator = start_emulator(make_scenario(api_versions=["2020-10-01", "2021-12-13", "2019-06-01", "2021-02-01"]))
    assert fetch_lb(emulator).status == 200
    reply = fetch(emulator, "/metadata/loadbalancer?api-version=2025-04-07")
    assert reply.status == 400
    assert reply.json()["newest-versions"] == ["2021-12-13", "2021-02-01", "2020-10-01"]


def test_versions_endpoint_needs_no_api_version(emulator):
    reply = fetch(emulator, "/metadata/versions")
    assert reply.status == 200
    versions = reply.json()["apiVersions"]
    assert versions == list(imds_emulator.DEFAULT_API_VERSIONS)
    assert versions[0] == "2017-03-01" and versions[-1] == "2025-04-07"


def test_versions_endpoint_still_needs_the_metadata_header(emulator):
    assert fetch(emulator, "/metadata/versions", headers={}).status == 400


def test_duplicate_query_parameters_are_rejected(emulator):
    reply = fetch(emulator, LOADBALANCER_URL_PATH + "&api-version=2021-02-01")
    assert reply.status == 400
    assert "api-version" in reply.json()["error"]


# -- methods and paths

@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_is_allowed(emulator, method):
    reply = fetch(emulator, LOADBALANCER_URL_PATH, method=method, body=b"{}" if method in ("POST", "PUT", "PATCH") else None)
    assert reply.status == 405
    assert reply.json() == {"error": f'Http method isn\'t allowed: Path = "/metadata/loadbalancer", Method = "{method}"'}
    assert fetch(emulator, "/metadata/instance?api-version=2021-02-01", method=method).status == 405


def test_head_gets_405_headers_without_a_body(emulator):
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        connection.request("HEAD", LOADBALANCER_URL_PATH, headers=METADATA)
        response = connection.getresponse()
        assert response.status == 405
        assert int(response.getheader("Content-Length")) > 0
        assert response.read() == b""
        # The connection is still in step: a second request on it works.
        connection.request("GET", LOADBALANCER_URL_PATH, headers=METADATA)
        assert connection.getresponse().status == 200
    finally:
        connection.close()


@pytest.mark.parametrize("path", ["/metadata/loadbalancers", "/metadata/loadbalancer/inboundRules", "/metadata/identity/oauth2/token",
                                  "/metadata", "/", "/latest/meta-data/"])
def test_unknown_paths_get_api_not_found(emulator, path):
    reply = fetch(emulator, path + "?api-version=2021-02-01")
    assert reply.status == 404
    assert reply.json() == {"error": f'API isn\'t found: Path = "{path}", Method = "GET"'}


# -- instance endpoint and route parameters

def test_instance_document_and_subtrees(emulator):
    assert fetch(emulator, "/metadata/instance?api-version=2021-02-01").json() == INSTANCE
    assert fetch(emulator, "/metadata/instance/compute?api-version=2021-02-01").json() == INSTANCE["compute"]
    reply = fetch(emulator, "/metadata/instance/network/interface/0/ipv4?api-version=2021-02-01&format=json")
    assert reply.status == 200
    assert reply.json() == INSTANCE["network"]["interface"][0]["ipv4"]
    assert fetch(emulator, "/metadata/instance/compute/?api-version=2021-02-01").json() == INSTANCE["compute"]


def test_leaf_values_need_format_text(emulator):
    reply = fetch(emulator, "/metadata/instance/network/interface/0/ipv4/ipAddress/1/privateIpAddress?api-version=2021-02-01&format=text")
    assert reply.status == 200
    assert reply.header("Content-Type") == TEXT_TYPE
    assert reply.text == "10.1.0.5"
    assert fetch(emulator, "/metadata/instance/compute/vmId?api-version=2021-02-01&format=text").text == INSTANCE["compute"]["vmId"]


def test_empty_leaf_is_an_empty_text_body(emulator):
    reply = fetch(emulator, "/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress?api-version=2021-02-01&format=text")
    assert reply.status == 200
    assert reply.body == b""
    assert reply.header("Content-Length") == "0"


@pytest.mark.parametrize("query", ["?api-version=2021-02-01", "?api-version=2021-02-01&format=json"])
def test_leaf_without_format_text_is_a_bad_request(emulator, query):
    reply = fetch(emulator, "/metadata/instance/compute/name" + query)
    assert reply.status == 400
    assert "format=text" in reply.json()["error"]


def test_format_text_on_a_non_leaf_is_a_bad_request(emulator):
    reply = fetch(emulator, "/metadata/instance/compute?api-version=2021-02-01&format=text")
    assert reply.status == 400
    assert "leaf" in reply.json()["error"]


def test_unsupported_format_is_a_bad_request(emulator):
    reply = fetch(emulator, "/metadata/instance?api-version=2021-02-01&format=xml")
    assert reply.status == 400
    assert '"xml"' in reply.json()["error"]


@pytest.mark.parametrize("route", ["compute/nope", "network/interface/1", "network/interface/first", "network/interface/-1",
                                   "compute/name/extra", "Compute"])
def test_unknown_route_parameters_are_404(emulator, route):
    reply = fetch(emulator, f"/metadata/instance/{route}?api-version=2021-02-01&format=text")
    assert reply.status == 404
    assert route in reply.json()["error"]


def test_scenario_without_instance_gets_a_default_vm(start_emulator):
    emulator = start_emulator(make_scenario())
    reply = fetch(emulator, "/metadata/instance/compute/vmId?api-version=2021-02-01&format=text")
    assert reply.status == 200
    assert reply.text == imds_emulator.DEFAULT_INSTANCE["compute"]["vmId"]


# -- rate limit

def test_rate_limit_allows_five_a_second_then_429(start_emulator):
    emulator = start_emulator(make_scenario(rate_limit={"requests": 5, "seconds": 30}))
    statuses = [fetch_lb(emulator).status for _ignored in range(8)]
    assert statuses == [200] * 5 + [429] * 3
    reply = fetch_lb(emulator)
    assert reply.json() == {"error": "Too many requests"}
    assert [entry["status"] for entry in emulator.requests()] == statuses + [429]


def test_default_rate_limit_is_five_requests_a_second(start_emulator):
    scenario = make_scenario()
    del scenario["rate_limit"]
    emulator = start_emulator(scenario)
    assert emulator.scenario["rate_limit"] == {"requests": 5, "seconds": 1.0}
    # Ten requests sent back to back take far less than a second here, so the
    # sixth and later fall inside the first one's window.
    statuses = [fetch_lb(emulator).status for _ignored in range(10)]
    assert statuses[:5] == [200] * 5
    assert 429 in statuses[5:]


def test_throttled_requests_do_not_extend_the_window(start_emulator):
    emulator = start_emulator(make_scenario(rate_limit={"requests": 2, "seconds": 0.6}))
    first_admitted = time.monotonic()
    assert [fetch_lb(emulator).status for _ignored in range(2)] == [200, 200]
    time.sleep(0.35)
    assert [fetch_lb(emulator).status for _ignored in range(3)] == [429, 429, 429]
    # Once the admitted pair has left the window a request goes through, even
    # though the throttled ones above are younger than the window.
    time.sleep(max(0.0, first_admitted + 0.7 - time.monotonic()))
    assert fetch_lb(emulator).status == 200


def test_rejected_requests_count_against_the_limit(start_emulator):
    emulator = start_emulator(make_scenario(rate_limit={"requests": 3, "seconds": 30}))
    assert [fetch_lb(emulator, headers={}).status for _ignored in range(3)] == [400, 400, 400]
    assert fetch_lb(emulator).status == 429


def test_rate_limit_null_disables_throttling(start_emulator):
    emulator = start_emulator(make_scenario(rate_limit=None))
    assert {fetch_lb(emulator).status for _ignored in range(25)} == {200}


# -- HTTP details

def test_keep_alive_connection_serves_several_requests(emulator):
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        for path in (LOADBALANCER_URL_PATH, "/metadata/versions", "/metadata/nope"):
            connection.request("GET", path, headers=METADATA)
            response = connection.getresponse()
            body = response.read()
            assert int(response.getheader("Content-Length")) == len(body)
        assert [entry["path"] for entry in emulator.requests()] == ["/metadata/loadbalancer", "/metadata/versions", "/metadata/nope"]
    finally:
        connection.close()


def test_every_answer_carries_content_length(emulator):
    for path, headers in ((LOADBALANCER_URL_PATH, METADATA), (LOADBALANCER_URL_PATH, {}), ("/metadata/instance", METADATA), ("/x", METADATA),
                          ("/metadata/instance/compute/name?api-version=2021-02-01&format=text", METADATA)):
        reply = fetch(emulator, path, headers=headers)
        assert reply.header("Content-Length") == str(len(reply.body))


def test_oversized_request_body_is_refused(emulator):
    reply = fetch(emulator, LOADBALANCER_URL_PATH, method="POST", body=b"x" * (imds_emulator.MAX_IMDS_BODY + 1))
    assert reply.status == 400
    assert reply.json()["error"].startswith("Request body is larger than MaxBodyLength")


def raw_exchange(emulator, request_bytes):
    """Send raw bytes and return everything the emulator sends back before closing."""
    with socket.create_connection(("127.0.0.1", emulator.port), timeout=5) as raw:
        raw.sendall(request_bytes)
        received = b""
        while True:
            piece = raw.recv(65536)
            if not piece:
                return received
            received += piece


def test_chunked_request_body_is_refused(emulator):
    answer = raw_exchange(emulator, b"POST " + LOADBALANCER_URL_PATH.encode() + b" HTTP/1.1\r\nHost: imds\r\nMetadata: true\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411 ")
    assert b"Content-Length" in answer


def test_absolute_form_request_line_is_served_by_path(emulator):
    answer = raw_exchange(emulator, b"GET http://169.254.169.254" + LOADBALANCER_URL_PATH.encode() + b" HTTP/1.1\r\nHost: 169.254.169.254\r\n"
                          b"Metadata: true\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(compact_json(SIMPLE_LOADBALANCER))
    assert emulator.requests()[0]["path"] == "/metadata/loadbalancer"
