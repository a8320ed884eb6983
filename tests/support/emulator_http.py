# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Helpers shared by the emulator tests: plain HTTP over http.client, so the
# tests see exactly the bytes a module would see.

import copy
import http.client
import json
from dataclasses import dataclass

from imds_emulator import SCHEDULED_EVENTS_API_VERSIONS, SCHEDULED_EVENTS_PATH

from .paths import LOADBALANCER_URL_PATH

METADATA = {"Metadata": "true"}
# The scheduled events path with the newest API version that serves it.
SCHEDULED_EVENTS_URL_PATH = f"{SCHEDULED_EVENTS_PATH}?api-version={SCHEDULED_EVENTS_API_VERSIONS[-1]}"

SIMPLE_LOADBALANCER = {
    "loadbalancer": {
        "publicIpAddresses": [],
        "inboundRules": [{"frontendIpAddress": "50.0.0.1", "protocol": "tcp", "frontendPort": 80, "backendPort": 8080, "privateIpAddress": "10.1.0.4"}],
        "outboundRules": [],
    }
}


def make_scenario(**overrides):
    """A small scenario with the rate limit off, so tests can send as many requests as they need."""
    scenario = {"description": "test scenario", "loadbalancer": copy.deepcopy(SIMPLE_LOADBALANCER), "rate_limit": None}
    scenario.update(overrides)
    return scenario


def compact_json(document):
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


@dataclass
class Reply:
    status: int
    headers: object
    body: bytes

    def header(self, name):
        return self.headers.get(name)

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode("utf-8")


def port_of(target):
    if isinstance(target, int):
        return target
    if isinstance(target, str):
        return int(target.rsplit(":", 1)[1])
    return target.port


def fetch(target, path, method="GET", headers=None, body=None, timeout=5.0):
    """One request on a fresh connection; returns a Reply."""
    connection = http.client.HTTPConnection("127.0.0.1", port_of(target), timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(METADATA if headers is None else headers))
        response = connection.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        connection.close()


def fetch_lb(target, **kwargs):
    return fetch(target, LOADBALANCER_URL_PATH, **kwargs)


def fetch_events(target, **kwargs):
    """GET the scheduled events document."""
    return fetch(target, SCHEDULED_EVENTS_URL_PATH, **kwargs)


def start_requests(*event_ids):
    """The body that approves these events: {"StartRequests": [{"EventId": ...}, ...]}."""
    return {"StartRequests": [{"EventId": event_id} for event_id in event_ids]}


def post_events(target, body, content_type="application/json", headers=None, **kwargs):
    """POST to the scheduled events path; a dict or list body is sent as JSON, bytes as they are."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
    sent = dict(METADATA if headers is None else headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    return fetch(target, SCHEDULED_EVENTS_URL_PATH, method="POST", headers=sent, body=data, **kwargs)


def control(target, method, name, document=None):
    body = None if document is None else json.dumps(document).encode("utf-8")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    return fetch(target, "/__emulator__/" + name, method=method, headers=headers, body=body)
