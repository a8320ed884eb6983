# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Helpers shared by the emulator tests: plain HTTP over http.client, so the
# tests see exactly the bytes a module would see.

import copy
import http.client
import json
from dataclasses import dataclass

from .paths import LOADBALANCER_URL_PATH

METADATA = {"Metadata": "true"}

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


def control(target, method, name, document=None):
    body = None if document is None else json.dumps(document).encode("utf-8")
    headers = {"Content-Type": "application/json"} if body is not None else {}
    return fetch(target, "/__emulator__/" + name, method=method, headers=headers, body=body)
