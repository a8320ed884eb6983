# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Local emulator of the Azure Instance Metadata Service (IMDS).
#
# Serves /metadata/loadbalancer, /metadata/instance (with route filtering),
# /metadata/scheduledevents (events that appear, start and end, approved by the
# one documented POST), /metadata/versions and a control API under
# /__emulator__/, enforces the rules Azure documents (Metadata header,
# api-version, GET only but for the approval, 5 requests a second) and injects
# faults on demand. Python 3.11+ standard library only.
#
# Run it:
#     python3 tools/imds_emulator.py --scenario documented --port 0
#     python3 tools/imds_emulator.py --fleet fleet.json
#
# Or import it:
#     from imds_emulator import Emulator
#     with Emulator("documented") as emulator:
#         print(emulator.endpoint)
#
# See docs/emulator.md for the scenario format, the faults and the control API.

import argparse
import copy
import email.utils
import json
import math
import os
import re
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from urllib.parse import parse_qsl, unquote, urlsplit

PROG = "imds_emulator"
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

# The versions Microsoft lists as supported, oldest first (instance-metadata-service.md).
DEFAULT_API_VERSIONS = (
    "2017-03-01", "2017-04-02", "2017-08-01", "2017-10-01", "2017-12-01",
    "2018-02-01", "2018-04-02", "2018-10-01",
    "2019-02-01", "2019-03-11", "2019-04-30", "2019-06-01", "2019-06-04", "2019-08-01", "2019-08-15", "2019-11-01",
    "2020-06-01", "2020-07-15", "2020-09-01", "2020-10-01", "2020-12-01",
    "2021-01-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-08-01", "2021-10-01", "2021-11-01", "2021-11-15", "2021-12-13",
    "2023-07-01", "2023-11-15", "2024-03-15", "2024-07-17", "2025-04-07",
)
# /metadata/loadbalancer appeared with this version; older ones are refused there.
LOADBALANCER_MIN_VERSION = "2020-10-01"
DEFAULT_RATE_LIMIT = {"requests": 5, "seconds": 1.0}

CONTROL_PREFIX = "/__emulator__"
CONTROL_PATHS = tuple(CONTROL_PREFIX + name for name in (
    "/requests", "/scenario", "/reset", "/scheduled-events", "/scheduled-events/approvals", "/scheduled-events/events"))
IMDS_PREFIX = "/metadata"
INSTANCE_PATH = "/metadata/instance"
LOADBALANCER_PATH = "/metadata/loadbalancer"
VERSIONS_PATH = "/metadata/versions"
SCHEDULED_EVENTS_PATH = "/metadata/scheduledevents"

# Scheduled Events has versions of its own (scheduled-events-linux.md).
SCHEDULED_EVENTS_API_VERSIONS = ("2017-11-01", "2019-01-01", "2019-08-01", "2020-07-01")
EVENT_TYPES = ("Freeze", "Reboot", "Redeploy", "Preempt", "Terminate")
EVENT_STATUSES = ("Scheduled", "Started")
EVENT_SOURCES = ("Platform", "User")
# The least notice Azure gives before NotBefore, per type (Terminate: the shortest it can be configured to).
MINIMUM_NOTICE_SECONDS = {"Freeze": 900, "Reboot": 900, "Redeploy": 600, "Preempt": 30, "Terminate": 300}
# An event is served with exactly these keys, in the order of Microsoft's sample.
SERVED_EVENT_KEYS = ("EventId", "EventStatus", "EventType", "ResourceType", "Resources", "NotBefore", "Description",
                     "EventSource", "DurationInSeconds")
EVENT_TIMING_KEYS = ("appear_after", "not_before_in")
SCHEDULED_EVENTS_KEYS = {"incarnation", "first_call_delay", "started_seconds", "api_versions", "events"}
DEFAULT_STARTED_SECONDS = 5

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
HTML_TYPE = "text/html; charset=utf-8"

MAX_IMDS_BODY = 64 * 1024
MAX_CONTROL_BODY = 16 * 1024 * 1024
MAX_OVERSIZE = 1024 * 1024 * 1024
MAX_DISCARDED_BODY = 64 * 1024 * 1024
STREAM_CHUNK = 64 * 1024
IDLE_CONNECTION_TIMEOUT = 120.0
MAX_LOGGED_REQUESTS = 10000  # the log keeps the newest ones

# Texts of Azure's answers. Wording follows Microsoft's IMDS and load balancer
# troubleshooting pages where they give one.
MSG_METADATA_HEADER = "Bad request. Required metadata header not specified"
MSG_FORWARDED = "Bad request. Requests that carry an X-Forwarded-For header are rejected"
MSG_API_VERSION = "Bad request. api-version is invalid or was not specified in the request. For more information refer to aka.ms/azureimds"
MSG_TOO_MANY = "Too many requests"
MSG_UNEXPECTED = "Unexpected request. Check the query parameters and retry."
MSG_START_REQUESTS_TYPE = "Bad request. The Content-Type of a StartRequests body must be application/json"
MSG_START_REQUESTS_JSON = "Bad request. The body is not valid JSON"
MSG_START_REQUESTS_SHAPE = 'Bad request. The body must be {"StartRequests": [{"EventId": "<id>"}, ...]} with at least one entry'
LOADBALANCER_ERRORS = {
    "no_metadata": "No load balancer metadata is found. Check if your virtual machine is using any nonbasic SKU load balancer and retry later.",
    "not_available": "Load Balancer metadata API isn't available right now. Retry later",
    "enabling": "/metadata/loadbalancer isn't currently available",
}
LOADBALANCER_ERROR_NAMES = ", ".join(sorted(LOADBALANCER_ERRORS))
DEFAULT_STATUS_MESSAGES = {
    400: "Bad request",
    403: "Forbidden",
    410: "Gone. Retry after some time, for a maximum of 70 seconds",
    429: MSG_TOO_MANY,
    500: "Internal server error. Retry after some time",
    502: "Bad gateway. Retry later",
    503: "Internal service unavailable. Retry later",
    504: "Gateway timeout. Retry later",
}
NON_JSON_BODY = (
    "<!DOCTYPE html>\n<html><head><title>Access denied</title></head>\n"
    "<body><h1>Access denied</h1><p>The web proxy refused this request.</p></body></html>\n"
)

SCENARIO_KEYS = {"description", "loadbalancer", "loadbalancer_error", "instance", "api_versions", "faults", "rate_limit",
                 "scheduled_events"}
FAULT_ACTIONS = ("status", "delay", "hang", "drip", "truncate", "reset", "redirect", "oversize", "non_json", "content_type")
FAULT_KEYS = set(FAULT_ACTIONS) | {"path", "count", "seconds", "body", "lb_error"}
# The faults that send the normal answer (late, slowly, cut or relabelled); the others replace it.
FAULTS_WITH_NORMAL_ANSWER = ("delay", "drip", "truncate", "content_type")
VERSION_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HOST_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

# A plain VM, served when a scenario has no "instance" of its own.
DEFAULT_INSTANCE = {
    "compute": {
        "azEnvironment": "AzurePublicCloud",
        "isHostCompatibilityLayerVm": "false",
        "licenseType": "",
        "location": "westeurope",
        "name": "vm-web-01",
        "offer": "0001-com-ubuntu-server-jammy",
        "osProfile": {"adminUsername": "azureuser", "computerName": "vm-web-01", "disablePasswordAuthentication": "true"},
        "osType": "Linux",
        "placementGroupId": "",
        "plan": {"name": "", "product": "", "publisher": ""},
        "platformFaultDomain": "0",
        "platformUpdateDomain": "0",
        "priority": "Regular",
        "provider": "Microsoft.Compute",
        "publicKeys": [],
        "publisher": "Canonical",
        "resourceGroupName": "rg-web",
        "resourceId": "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01",
        "sku": "22_04-lts-gen2",
        "subscriptionId": "00000000-0000-4000-8000-000000000001",
        "tags": "",
        "tagsList": [],
        "userData": "",
        "version": "22.04.202601150",
        "vmId": "5c6f2a9e-1b1d-4c53-9a8e-0d6f3f1e2a01",
        "vmScaleSetName": "",
        "vmSize": "Standard_D2s_v5",
        "zone": "1",
    },
    "network": {
        "interface": [
            {
                "ipv4": {
                    "ipAddress": [{"privateIpAddress": "10.1.0.4", "publicIpAddress": ""}],
                    "subnet": [{"address": "10.1.0.0", "prefix": "24"}],
                },
                "ipv6": {"ipAddress": []},
                "macAddress": "000D3A2B4C5D",
            }
        ]
    },
}


class ScenarioError(ValueError):
    """A scenario or fleet description is not valid; the message says where and why."""


# --------------------------------------------------------------------------- scenarios

def bundled_scenarios():
    """Names of the scenarios shipped in tools/scenarios/, sorted."""
    if not SCENARIO_DIR.is_dir():
        return []
    return sorted(entry.stem for entry in SCENARIO_DIR.glob("*.json"))


def _looks_like_path(reference):
    return os.sep in reference or "/" in reference or reference.endswith(".json")


def resolve_scenario_reference(reference, base_dir=None):
    """Turn a bundled scenario name or a file path into the path of a JSON file."""
    if not isinstance(reference, str) or not reference.strip():
        raise ScenarioError("a scenario reference must be a bundled scenario name or a path to a JSON file")
    if not _looks_like_path(reference):
        bundled = SCENARIO_DIR / (reference + ".json")
        if bundled.is_file():
            return bundled
    candidates = []
    if base_dir is not None and not os.path.isabs(reference):
        candidates.append(Path(base_dir) / reference)
    candidates.append(Path(reference))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if _looks_like_path(reference):
        raise ScenarioError(f"scenario file not found: {reference}")
    raise ScenarioError(f'unknown scenario {reference!r}; bundled scenarios: {", ".join(bundled_scenarios()) or "none"}')


def _read_json_file(path, what):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f'cannot read {what} {path}: {getattr(exc, "strerror", None) or exc}') from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{what} {path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def load_scenario(reference, base_dir=None):
    """Load and validate a scenario given as a bundled name, a path, or an already parsed object."""
    if isinstance(reference, dict):
        return validate_scenario(reference)
    path = resolve_scenario_reference(reference, base_dir)
    return validate_scenario(_read_json_file(path, "scenario file"), source=str(path))


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate_scenario(data, source="scenario"):
    """Check a scenario object and return a normalised deep copy with defaults filled in.

    Raises ScenarioError naming the offending key.
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: the top level must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - SCENARIO_KEYS)
    if unknown:
        raise ScenarioError(f'{source}: unknown key(s) {", ".join(map(repr, unknown))}; allowed: {", ".join(sorted(SCENARIO_KEYS))}')
    scenario = copy.deepcopy(data)

    description = scenario.setdefault("description", "")
    if not isinstance(description, str):
        raise ScenarioError(f"{source}: 'description' must be a string")

    lb_error = scenario.get("loadbalancer_error")
    if lb_error is not None and lb_error not in LOADBALANCER_ERRORS:
        raise ScenarioError(f"{source}: 'loadbalancer_error' must be one of {LOADBALANCER_ERROR_NAMES}")

    if "instance" in scenario:
        if not isinstance(scenario["instance"], dict):
            raise ScenarioError(f"{source}: 'instance' must be a JSON object")
    else:
        scenario["instance"] = copy.deepcopy(DEFAULT_INSTANCE)

    versions = scenario.setdefault("api_versions", list(DEFAULT_API_VERSIONS))
    if not isinstance(versions, list) or not versions:
        raise ScenarioError(f"{source}: 'api_versions' must be a non-empty list of dates like \"2020-10-01\"")
    for version in versions:
        if not isinstance(version, str) or not VERSION_PATTERN.match(version):
            raise ScenarioError(f"{source}: 'api_versions' entry {version!r} is not a date like \"2020-10-01\"")
    if len(set(versions)) != len(versions):
        raise ScenarioError(f"{source}: 'api_versions' has duplicates")

    if "rate_limit" in scenario:
        scenario["rate_limit"] = _validate_rate_limit(scenario["rate_limit"], source)
    else:
        scenario["rate_limit"] = dict(DEFAULT_RATE_LIMIT)

    faults = scenario.setdefault("faults", [])
    if not isinstance(faults, list):
        raise ScenarioError(f"{source}: 'faults' must be a list")
    scenario["faults"] = [_validate_fault(fault, f"{source}: faults[{index}]") for index, fault in enumerate(faults)]
    scenario["scheduled_events"] = _validate_scheduled_events(scenario.get("scheduled_events", {}), source)
    return scenario


def _validate_rate_limit(value, source):
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"requests", "seconds"}:
        raise ScenarioError(f"{source}: 'rate_limit' must be null or {{\"requests\": N, \"seconds\": S}}")
    requests, seconds = value["requests"], value["seconds"]
    if not _is_int(requests) or requests < 1:
        raise ScenarioError(f"{source}: 'rate_limit.requests' must be an integer of at least 1")
    if not _is_number(seconds) or seconds <= 0:
        raise ScenarioError(f"{source}: 'rate_limit.seconds' must be a positive number")
    return {"requests": requests, "seconds": float(seconds)}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value):
    return isinstance(value, str) and bool(value)


# What each fault action accepts as its value, and how to say so.
FAULT_VALUE_CHECKS = {
    "status": (lambda value: _is_int(value) and 200 <= value <= 599, "an HTTP status code between 200 and 599"),
    "delay": (lambda value: _is_number(value) and value >= 0, "a number of seconds, 0 or more"),
    "hang": (lambda value: value is True, "true"),
    "drip": (lambda value: _is_number(value) and value >= 0, "a number of seconds per byte, 0 or more"),
    "truncate": (lambda value: _is_int(value) and value >= 0, "a number of bytes, 0 or more"),
    "reset": (lambda value: value is True, "true"),
    "redirect": (_is_text, "a non-empty URL"),
    "oversize": (lambda value: _is_int(value) and 2 <= value <= MAX_OVERSIZE, f"a number of bytes between 2 and {MAX_OVERSIZE}"),
    "non_json": (lambda value: value is True, "true"),
    "content_type": (_is_text, "a non-empty string"),
}


def _fault_actions(fault):
    # content_type is an action of its own only when no other action is given.
    actions = [name for name in FAULT_ACTIONS if name in fault and name != "content_type"]
    if not actions and "content_type" in fault:
        actions = ["content_type"]
    return actions


def fault_action(fault):
    """The action of a validated fault, e.g. "status" or "hang"."""
    return _fault_actions(fault)[0]


def _validate_fault(fault, where):
    if not isinstance(fault, dict):
        raise ScenarioError(f"{where}: a fault must be a JSON object")
    unknown = sorted(set(fault) - FAULT_KEYS)
    if unknown:
        raise ScenarioError(f'{where}: unknown key(s) {", ".join(map(repr, unknown))}; allowed: {", ".join(sorted(FAULT_KEYS))}')
    fault = dict(fault)

    path = fault.setdefault("path", IMDS_PREFIX)
    if not isinstance(path, str) or not path.startswith("/"):
        raise ScenarioError(f"{where}: 'path' must be a URL path starting with '/'")
    if "count" in fault and "seconds" in fault:
        raise ScenarioError(f"{where}: give either 'count' or 'seconds', not both")
    if "count" in fault and not (_is_int(fault["count"]) and fault["count"] >= 1):
        raise ScenarioError(f"{where}: 'count' must be an integer of at least 1")
    if "seconds" in fault and (not _is_number(fault["seconds"]) or fault["seconds"] <= 0):
        raise ScenarioError(f"{where}: 'seconds' must be a positive number")

    actions = _fault_actions(fault)
    if len(actions) != 1:
        found = ", ".join(actions) if actions else "none"
        raise ScenarioError(f'{where}: a fault needs exactly one action out of {", ".join(FAULT_ACTIONS)} (found: {found})')
    action = actions[0]

    if "body" in fault and action != "status":
        raise ScenarioError(f"{where}: 'body' only goes with 'status'")
    if "lb_error" in fault and not (action == "status" and fault["status"] == 404):
        raise ScenarioError(f"{where}: 'lb_error' only goes with \"status\": 404")
    if "content_type" in fault and action not in ("status", "content_type"):
        raise ScenarioError(f"{where}: 'content_type' cannot be combined with '{action}'")

    for name in FAULT_ACTIONS:
        if name in fault:
            accepts, expected = FAULT_VALUE_CHECKS[name]
            if not accepts(fault[name]):
                raise ScenarioError(f"{where}: '{name}' must be {expected}")
    if "lb_error" in fault and fault["lb_error"] not in LOADBALANCER_ERRORS:
        raise ScenarioError(f"{where}: 'lb_error' must be one of {LOADBALANCER_ERROR_NAMES}")
    return fault


def _validate_scheduled_events(value, source):
    where = f"{source}: 'scheduled_events'"
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a JSON object")
    unknown = sorted(set(value) - SCHEDULED_EVENTS_KEYS)
    if unknown:
        raise ScenarioError(f'{where}: unknown key(s) {", ".join(map(repr, unknown))}; allowed: {", ".join(sorted(SCHEDULED_EVENTS_KEYS))}')
    settings = {
        "incarnation": value.get("incarnation", 1),
        "first_call_delay": value.get("first_call_delay", 0),
        "started_seconds": value.get("started_seconds", DEFAULT_STARTED_SECONDS),
        "api_versions": value.get("api_versions", list(SCHEDULED_EVENTS_API_VERSIONS)),
        "events": value.get("events", []),
    }
    if not _is_int(settings["incarnation"]) or settings["incarnation"] < 0:
        raise ScenarioError(f"{where}: 'incarnation' must be an integer, 0 or more")
    for name in ("first_call_delay", "started_seconds"):
        if not _is_number(settings[name]) or settings[name] < 0:
            raise ScenarioError(f"{where}: '{name}' must be a number of seconds, 0 or more")
    versions = settings["api_versions"]
    if (not isinstance(versions, list) or not versions or len(set(map(repr, versions))) != len(versions)
            or any(version not in SCHEDULED_EVENTS_API_VERSIONS for version in versions)):
        raise ScenarioError(f'{where}: \'api_versions\' must be a non-empty list without duplicates out of {", ".join(SCHEDULED_EVENTS_API_VERSIONS)}')
    if not isinstance(settings["events"], list):
        raise ScenarioError(f"{where}: 'events' must be a list")
    settings["events"] = [validate_scheduled_event(event, f"{where}: events[{index}]") for index, event in enumerate(settings["events"])]
    identifiers = [event["EventId"] for event in settings["events"]]
    if len(set(identifiers)) != len(identifiers):
        raise ScenarioError(f"{where}: two events have the same EventId")
    return settings


def validate_scheduled_event(event, where="event"):
    """Check one scheduled event as a scenario gives it; return it with defaults filled in.

    Besides Azure's keys it may carry appear_after (seconds after the scenario
    is installed, or the event added, before it is served) and not_before_in
    (seconds from its appearance to its NotBefore); those two are never served.
    """
    if not isinstance(event, dict):
        raise ScenarioError(f"{where}: an event must be a JSON object")
    allowed = set(SERVED_EVENT_KEYS) | set(EVENT_TIMING_KEYS)
    unknown = sorted(set(event) - allowed)
    if unknown:
        raise ScenarioError(f'{where}: unknown key(s) {", ".join(map(repr, unknown))}; allowed: {", ".join(sorted(allowed))}')
    for name in ("EventId", "EventType", "Resources"):
        if name not in event:
            raise ScenarioError(f"{where}: '{name}' is missing")
    checked = {
        "EventId": event["EventId"],
        "EventStatus": event.get("EventStatus", "Scheduled"),
        "EventType": event["EventType"],
        "ResourceType": event.get("ResourceType", "VirtualMachine"),
        "Resources": event["Resources"],
        "Description": event.get("Description", ""),
        "EventSource": event.get("EventSource", "Platform"),
        "DurationInSeconds": event.get("DurationInSeconds", -1),
        "appear_after": event.get("appear_after", 0),
    }
    if not _is_text(checked["EventId"]):
        raise ScenarioError(f"{where}: 'EventId' must be a non-empty string")
    for name, choices in (("EventStatus", EVENT_STATUSES), ("EventType", EVENT_TYPES), ("EventSource", EVENT_SOURCES),
                          ("ResourceType", ("VirtualMachine",))):
        if checked[name] not in choices:
            raise ScenarioError(f'{where}: \'{name}\' must be one of {", ".join(choices)}')
    resources = checked["Resources"]
    if not isinstance(resources, list) or not resources or not all(_is_text(name) for name in resources):
        raise ScenarioError(f"{where}: 'Resources' must be a non-empty list of VM names")
    if not isinstance(checked["Description"], str):
        raise ScenarioError(f"{where}: 'Description' must be a string")
    duration = checked["DurationInSeconds"]
    if not _is_int(duration) or duration < -1:
        raise ScenarioError(f"{where}: 'DurationInSeconds' must be an integer, -1 (unknown) or more")
    if not _is_number(checked["appear_after"]) or checked["appear_after"] < 0:
        raise ScenarioError(f"{where}: 'appear_after' must be a number of seconds, 0 or more")
    if "NotBefore" in event and "not_before_in" in event:
        raise ScenarioError(f"{where}: give either 'NotBefore' or 'not_before_in', not both")
    if "NotBefore" in event:
        if not isinstance(event["NotBefore"], str):
            raise ScenarioError(f'{where}: \'NotBefore\' must be a string such as "Thu, 22 Jul 2021 04:50:17 GMT", or ""')
        checked["NotBefore"] = event["NotBefore"]
    else:
        checked["not_before_in"] = event.get("not_before_in", MINIMUM_NOTICE_SECONDS[checked["EventType"]])
        if not _is_number(checked["not_before_in"]) or checked["not_before_in"] < 0:
            raise ScenarioError(f"{where}: 'not_before_in' must be a number of seconds, 0 or more")
    return checked


# --------------------------------------------------------------------------- fleets

@dataclass
class HostSpec:
    """One host of a fleet: its name, its validated scenario and the port to listen on."""
    name: str
    scenario: dict
    port: int = 0
    host: str | None = None


def load_fleet(path):
    """Read and validate a fleet file; return a list of HostSpec."""
    data = _read_json_file(path, "fleet file")
    return parse_fleet(data, source=str(path), base_dir=Path(path).resolve().parent)


def parse_fleet(data, source="fleet", base_dir=None):
    if not isinstance(data, dict) or set(data) != {"hosts"} or not isinstance(data["hosts"], list) or not data["hosts"]:
        raise ScenarioError(f"{source}: a fleet must be {{\"hosts\": [{{\"name\": ..., \"scenario\": ..., \"port\": 0}}, ...]}} with at least one host")
    specs, names = [], set()
    for index, entry in enumerate(data["hosts"]):
        where = f"{source}: hosts[{index}]"
        if not isinstance(entry, dict):
            raise ScenarioError(f"{where}: must be a JSON object")
        unknown = sorted(set(entry) - {"name", "scenario", "port", "host"})
        if unknown:
            raise ScenarioError(f'{where}: unknown key(s) {", ".join(map(repr, unknown))}; allowed: host, name, port, scenario')
        name = entry.get("name")
        if not isinstance(name, str) or not HOST_NAME_PATTERN.match(name):
            raise ScenarioError(f"{where}: 'name' must be a short host name (letters, digits, '.', '_', '-')")
        if name in names:
            raise ScenarioError(f"{where}: duplicate host name {name!r}")
        names.add(name)
        port = entry.get("port", 0)
        if not _is_int(port) or not 0 <= port <= 65535:
            raise ScenarioError(f"{where}: 'port' must be an integer between 0 and 65535")
        bind_host = entry.get("host")
        if bind_host is not None and (not isinstance(bind_host, str) or not bind_host):
            raise ScenarioError(f"{where}: 'host' must be an address to listen on")
        if "scenario" not in entry:
            raise ScenarioError(f"{where}: 'scenario' is missing (a bundled name, a path, or an inline scenario object)")
        reference = entry["scenario"]
        try:
            if isinstance(reference, dict):
                scenario = validate_scenario(reference, source=f"{where}.scenario")
            else:
                scenario = load_scenario(reference, base_dir=base_dir)
        except ScenarioError as exc:
            raise ScenarioError(f"{where} (host {name}): {exc}") from None
        specs.append(HostSpec(name=name, scenario=scenario, port=port, host=bind_host))
    return specs


# --------------------------------------------------------------------------- IMDS behaviour

@dataclass
class Answer:
    """An HTTP answer before any fault reshapes it."""
    status: int
    body: bytes = b""
    content_type: str = JSON_TYPE
    headers: list = field(default_factory=list)


def json_answer(status, document):
    return Answer(status, json.dumps(document, separators=(",", ":")).encode("utf-8"), JSON_TYPE)


def error_answer(status, message, **extra):
    document = {"error": message}
    document.update(extra)
    return json_answer(status, document)


def api_version_error(versions):
    newest = sorted(versions, reverse=True)[:3]
    return error_answer(400, MSG_API_VERSION, **{"newest-versions": newest})


def not_found_answer(path, method):
    return error_answer(404, f'API isn\'t found: Path = "{path}", Method = "{method}"')


def method_not_allowed_answer(path, method):
    return error_answer(405, f'Http method isn\'t allowed: Path = "{path}", Method = "{method}"')


def disallowed_value_answer(name, value):
    return error_answer(400, f'Parameter value "{value}" isn\'t allowed for parameter "{name}". Fix the request and retry.')


def fault_status_answer(fault):
    """The answer of a "status" fault: its own body, or the documented one for that code."""
    status = fault["status"]
    if "body" in fault:
        body = fault["body"]
        if isinstance(body, str):
            answer = Answer(status, body.encode("utf-8"), TEXT_TYPE)
        else:
            answer = json_answer(status, body)
    elif status == 404:
        answer = error_answer(404, LOADBALANCER_ERRORS[fault.get("lb_error", "not_available")])
    else:
        answer = error_answer(status, DEFAULT_STATUS_MESSAGES.get(status, f"HTTP {status}"))
    if "content_type" in fault:
        answer.content_type = fault["content_type"]
    return answer


def _split_segments(path, prefix):
    rest = path[len(prefix):]
    return [unquote(segment) for segment in rest.split("/") if segment]


def _is_leaf(value):
    return not isinstance(value, (dict, list))


def _leaf_text(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _walk(document, segments):
    """Follow route parameters: dict keys and list indexes. Returns (found, value)."""
    node = document
    for segment in segments:
        if isinstance(node, dict) and segment in node:
            node = node[segment]
        elif isinstance(node, list) and segment.isdigit() and int(segment) < len(node):
            node = node[int(segment)]
        else:
            return False, None
    return True, node


def _endpoint_of(path):
    for endpoint in (INSTANCE_PATH, LOADBALANCER_PATH, VERSIONS_PATH, SCHEDULED_EVENTS_PATH):
        if path == endpoint or path.startswith(endpoint + "/"):
            return endpoint
    return None


def imds_answer(scenario, method, path, query, scheduled=None, body=b"", content_type="", stopping=None):
    """What IMDS answers to a request that passed the header checks, before faults.

    scheduled is the ScheduledEvents state that /metadata/scheduledevents
    serves; that path may wait for its first-call delay (until `stopping` is
    set: then the answer is None).
    """
    endpoint = _endpoint_of(path)
    if endpoint is None or (endpoint != INSTANCE_PATH and path.rstrip("/") != endpoint):
        return not_found_answer(path, method)
    if method != "GET" and not (endpoint == SCHEDULED_EVENTS_PATH and method == "POST"):
        return method_not_allowed_answer(path, method)

    params = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in params:
            return error_answer(400, f'Bad request. Duplicate query parameter "{name}"')
        params[name] = value

    if endpoint == VERSIONS_PATH:
        return json_answer(200, {"apiVersions": list(scenario["api_versions"])})

    version = params.get("api-version")
    if endpoint == SCHEDULED_EVENTS_PATH:
        return _scheduled_events_answer(scenario, params, version, scheduled, method, body, content_type, stopping)
    if version not in scenario["api_versions"]:
        return api_version_error(scenario["api_versions"])
    if endpoint == LOADBALANCER_PATH:
        return _loadbalancer_answer(scenario, params, version)
    return _instance_answer(scenario, path, params)


def _loadbalancer_answer(scenario, params, version):
    if version < LOADBALANCER_MIN_VERSION:
        return disallowed_value_answer("api-version", version)
    if params.get("format", "json") != "json":
        return disallowed_value_answer("format", params["format"])
    if set(params) - {"api-version", "format"}:
        return error_answer(400, MSG_UNEXPECTED)
    if scenario.get("loadbalancer_error") or "loadbalancer" not in scenario:
        return error_answer(404, LOADBALANCER_ERRORS[scenario.get("loadbalancer_error") or "no_metadata"])
    return json_answer(200, scenario["loadbalancer"])


def _scheduled_events_answer(scenario, params, version, scheduled, method, body, content_type, stopping):
    versions = scenario["scheduled_events"]["api_versions"]
    if version not in versions:
        return api_version_error(versions)
    if params.get("format", "json") != "json":
        return disallowed_value_answer("format", params["format"])
    if set(params) - {"api-version", "format"}:
        return error_answer(400, MSG_UNEXPECTED)
    if scheduled is None:
        scheduled = ScheduledEvents(scenario["scheduled_events"])
    if not scheduled.wait_until_enabled(stopping):
        return None
    if method == "GET":
        return json_answer(200, scheduled.document())
    if content_type.split(";")[0].strip().lower() != "application/json":
        return error_answer(400, MSG_START_REQUESTS_TYPE)
    document, parsed = parse_json_body(body)
    if not parsed:
        return error_answer(400, MSG_START_REQUESTS_JSON)
    event_ids, problem = read_start_requests(document)
    if problem:
        return error_answer(400, problem)
    scheduled.approve(event_ids)
    return Answer(200, b"", JSON_TYPE)


def parse_json_body(body):
    """(document, True) for a UTF-8 JSON body, (None, False) otherwise."""
    try:
        return json.loads(body.decode("utf-8")), True
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, False


def read_start_requests(document):
    """The EventIds of a StartRequests body, and what is wrong with it (None when nothing).

    The ids of well-formed entries are returned even when another entry is
    wrong, so that the approvals log shows what a client tried to approve.
    Keys besides StartRequests and EventId are allowed.
    """
    if not isinstance(document, dict) or not isinstance(document.get("StartRequests"), list) or not document["StartRequests"]:
        return [], MSG_START_REQUESTS_SHAPE
    event_ids, problem = [], None
    for index, entry in enumerate(document["StartRequests"]):
        if isinstance(entry, dict) and _is_text(entry.get("EventId")):
            event_ids.append(entry["EventId"])
        elif problem is None:
            problem = f"Bad request. StartRequests[{index}] has no EventId string"
    return event_ids, problem


def rfc1123(timestamp):
    """Seconds since the epoch as Azure writes NotBefore: "Thu, 22 Jul 2021 04:50:17 GMT"."""
    return email.utils.formatdate(timestamp, usegmt=True)


def _parse_rfc1123(text):
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def _instance_answer(scenario, path, params):
    output_format = params.get("format", "json")
    if output_format not in ("json", "text"):
        return disallowed_value_answer("format", output_format)
    found, node = _walk(scenario["instance"], _split_segments(path, INSTANCE_PATH))
    if not found:
        return error_answer(404, f'Not found. The requested element doesn\'t exist: Path = "{path}"')
    if _is_leaf(node):
        if output_format != "text":
            return error_answer(400, "Bad request. Querying a leaf node requires format=text")
        return Answer(200, _leaf_text(node).encode("utf-8"), TEXT_TYPE)
    if output_format == "text":
        return error_answer(400, "Bad request. format=text is only supported for leaf nodes")
    return json_answer(200, node)


# --------------------------------------------------------------------------- scheduled events

class _TimedEvent:
    """One scheduled event and the moments (monotonic clock) its life turns on."""

    def __init__(self, spec, appear_at, wall_of, started_seconds):
        self.event_id = spec["EventId"]
        self.fields = {key: copy.deepcopy(spec[key]) for key in SERVED_EVENT_KEYS if key in spec}
        self.appear_at = appear_at
        self.approved_at = None
        self.initially_started = spec["EventStatus"] == "Started"
        duration = spec["DurationInSeconds"]
        self.run_seconds = duration if duration >= 0 else started_seconds
        if "NotBefore" in spec:
            # Served as given; a date in it starts the event when it passes, "" never does.
            moment = _parse_rfc1123(spec["NotBefore"])
            self.auto_start_at = None if moment is None else appear_at + (moment - wall_of(appear_at))
        else:
            # Whole seconds, never earlier than asked: the event must not start before what is served.
            moment = math.ceil(wall_of(appear_at) + spec["not_before_in"])
            self.fields["NotBefore"] = rfc1123(moment)
            self.auto_start_at = appear_at + (moment - wall_of(appear_at))

    def started_at(self):
        if self.initially_started:
            return self.appear_at
        moments = [moment for moment in (self.auto_start_at, self.approved_at) if moment is not None]
        return max(min(moments), self.appear_at) if moments else None

    def served_at(self, now, installed_at):
        """(the event as served at `now` or None, how many changes it made to the document since installed_at)."""
        if now < self.appear_at:
            return None, 0
        changes = 1 if self.appear_at > installed_at else 0
        started = self.started_at()
        if started is None or now < started:
            return self._served("Scheduled"), changes
        if started > self.appear_at:
            changes += 1
        if now < started + self.run_seconds:
            return self._served("Started"), changes
        return None, changes + 1

    def _served(self, status):
        served = dict(self.fields, EventStatus=status)
        return {key: copy.deepcopy(served[key]) for key in SERVED_EVENT_KEYS}


class ScheduledEvents:
    """The scheduled events document of one emulated VM, computed from the clock when asked.

    Events appear, start (approved or when NotBefore passes) and end by
    themselves; every such change adds 1 to DocumentIncarnation. No thread runs
    in the background.
    """

    def __init__(self, settings):
        self._lock = threading.Lock()
        self.settings = settings
        self.installed_at = time.monotonic()
        self._wall_offset = time.time() - self.installed_at
        self._events = [self._timed(spec, self.installed_at) for spec in settings["events"]]
        self._enabled_at = None
        self._approvals = deque(maxlen=MAX_LOGGED_REQUESTS)

    def _wall_of(self, moment):
        return moment + self._wall_offset

    def _timed(self, spec, added_at):
        return _TimedEvent(spec, added_at + spec["appear_after"], self._wall_of, self.settings["started_seconds"])

    def wait_until_enabled(self, stopping=None):
        """The first request waits first_call_delay; requests arriving meanwhile wait with it. False if stopped."""
        now = time.monotonic()
        with self._lock:
            if self._enabled_at is None:
                self._enabled_at = now + self.settings["first_call_delay"]
            remaining = self._enabled_at - now
        if remaining <= 0:
            return True
        if stopping is None:
            time.sleep(remaining)
            return True
        return not stopping.wait(remaining)

    def _served(self, now):
        incarnation, events = self.settings["incarnation"], []
        for timed in self._events:
            served, changes = timed.served_at(now, self.installed_at)
            incarnation += changes
            if served is not None:
                events.append(served)
        return {"DocumentIncarnation": incarnation, "Events": events}

    def document(self):
        """The document as served now."""
        with self._lock:
            return self._served(time.monotonic())

    def approve(self, event_ids):
        """Start the listed events that are served and Scheduled now; other ids are ignored, as Azure does."""
        wanted = set(event_ids)
        with self._lock:
            now = time.monotonic()
            for timed in self._events:
                served, _ignored = timed.served_at(now, self.installed_at)
                if timed.event_id in wanted and served is not None and served["EventStatus"] == "Scheduled":
                    timed.approved_at = now

    def add(self, spec):
        """Add a validated event; it appears appear_after seconds from now. Raises ScenarioError for a known EventId."""
        with self._lock:
            if any(timed.event_id == spec["EventId"] for timed in self._events):
                raise ScenarioError(f'an event with EventId {spec["EventId"]!r} exists already')
            self._events.append(self._timed(spec, time.monotonic()))

    def record_post(self, arrived, body, status):
        document, _ignored = parse_json_body(body)
        event_ids, _ignored = read_start_requests(document)
        with self._lock:
            self._approvals.append({"time": arrived, "event_ids": event_ids, "status": status, "body": document})

    def approvals(self):
        """Every POST to /metadata/scheduledevents so far, oldest first, whatever its answer."""
        with self._lock:
            return copy.deepcopy(list(self._approvals))


# --------------------------------------------------------------------------- per-server state

class RateLimiter:
    """At most `requests` answered requests in any sliding window of `seconds`.

    Only admitted requests enter the window: a throttled request does not
    push the moment the client may try again further away.
    """

    def __init__(self, requests, seconds):
        self.requests = requests
        self.seconds = seconds
        self._admitted = deque()
        self._lock = threading.Lock()

    def admit(self):
        now = time.monotonic()
        with self._lock:
            while self._admitted and self._admitted[0] <= now - self.seconds:
                self._admitted.popleft()
            if len(self._admitted) >= self.requests:
                return False
            self._admitted.append(now)
            return True


class _FaultTracker:
    """How much of one fault is left: a count, a time window, or no limit."""

    def __init__(self, index, spec):
        self.index = index
        self.spec = spec
        self.action = fault_action(spec)
        self.remaining = spec.get("count")
        self.started = None
        self.exhausted = False
        self._prefix = spec["path"].rstrip("/") or "/"

    def matches(self, path):
        return self._prefix == "/" or path == self._prefix or path.startswith(self._prefix + "/")

    def take(self, now):
        """Consume one use if the fault still applies; tell whether it does."""
        if self.remaining is not None:
            self.remaining -= 1
            self.exhausted = self.remaining <= 0
            return True
        if "seconds" in self.spec:
            if self.started is None:
                self.started = now
            if now - self.started < self.spec["seconds"]:
                return True
            self.exhausted = True
            return False
        return True


class _ServerState:
    """Scenario, faults, rate limiter and request log of one emulated VM."""

    def __init__(self, scenario):
        self._lock = threading.Lock()
        self._install(scenario)

    def _install(self, scenario):
        self.scenario = scenario
        self.faults = [_FaultTracker(index, spec) for index, spec in enumerate(scenario["faults"])]
        limit = scenario["rate_limit"]
        self.limiter = RateLimiter(limit["requests"], limit["seconds"]) if limit else None
        self.log = deque(maxlen=MAX_LOGGED_REQUESTS)
        self.scheduled = ScheduledEvents(scenario["scheduled_events"])

    def replace(self, scenario):
        with self._lock:
            self._install(scenario)

    def reset(self):
        with self._lock:
            self._install(self.scenario)

    def admit(self):
        limiter = self.limiter
        return limiter is None or limiter.admit()

    def next_fault(self, path):
        now = time.monotonic()
        with self._lock:
            for tracker in self.faults:
                if tracker.exhausted or not tracker.matches(path):
                    continue
                if tracker.take(now):
                    return tracker
        return None

    def record(self, entry):
        with self._lock:
            self.log.append(entry)

    def requests(self):
        with self._lock:
            return copy.deepcopy(list(self.log))


# --------------------------------------------------------------------------- HTTP layer

class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_CONNECTION_TIMEOUT

    def version_string(self):
        return "imds-emulator"

    def log_message(self, format, *args):
        """Silence the default per-request stderr lines; --log-requests prints its own."""

    def setup(self):
        super().setup()
        self.server.track(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    # -- entry point

    def _dispatch(self):
        if self.path.startswith("/"):
            path, _ignored, query = self.path.partition("#")[0].partition("?")
        else:  # absolute form, as a client configured with a proxy sends it
            url = urlsplit(self.path)
            path, query = url.path or "/", url.query
        if not self._drain_request_body(path):
            return
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            self._control(path)
        else:
            self._imds(path, query)

    def _drain_request_body(self, path):
        """Read any request body so keep-alive stays in step; refuse large ones."""
        self.request_body = b""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._send(error_answer(411, "Length required. Send the body with a Content-Length header"))
            return False
        try:
            length = int(self.headers.get("Content-Length", "0") or "0")
        except ValueError:
            length = -1
        limit = MAX_CONTROL_BODY if path.startswith(CONTROL_PREFIX) else MAX_IMDS_BODY
        if 0 <= length <= limit:
            self.request_body = self.rfile.read(length) if length else b""
            return True
        if 0 < length <= MAX_DISCARDED_BODY:
            # Read what was sent before answering: closing with unread data
            # would make the kernel reset the connection and lose the answer.
            while length > 0:
                chunk = self.rfile.read(min(length, STREAM_CHUNK))
                if not chunk:
                    break
                length -= len(chunk)
        else:
            self.close_connection = True
        self._send(error_answer(400, f"Request body is larger than MaxBodyLength: {limit}"))
        return False

    # -- IMDS traffic

    def _imds(self, path, query):
        state = self.server.state
        entry = {
            "time": time.time(),
            "method": self.command,
            "path": path,
            "query": query,
            "headers": dict(self.headers.items()),
            "status": 0,
            "fault": None,
        }
        tracker = None
        if not state.admit():
            answer = error_answer(429, MSG_TOO_MANY)
        elif "X-Forwarded-For" in self.headers:
            answer = error_answer(400, MSG_FORWARDED)
        elif self.headers.get("Metadata", "").strip().lower() != "true":
            answer = error_answer(400, MSG_METADATA_HEADER)
        else:
            tracker = state.next_fault(path)
            if tracker is not None:
                entry["fault"] = {"index": tracker.index, "action": tracker.action}
            # A fault that replaces the answer keeps the request from the
            # emulated service: an approval it intercepts approves nothing.
            answer = None
            if tracker is None or tracker.action in FAULTS_WITH_NORMAL_ANSWER:
                answer = imds_answer(state.scenario, self.command, path, query, scheduled=state.scheduled, body=self.request_body,
                                     content_type=self.headers.get("Content-Type", ""), stopping=self.server.stopping)
                if answer is None:  # stopped while the first scheduled events call waited
                    self._finish_entry(entry, 0)
                    self._abort_quietly()
                    return
        if tracker is None:
            self._finish_entry(entry, answer.status)
            self._send(answer)
        else:
            self._apply_fault(tracker.spec, tracker.action, answer, entry)

    def _finish_entry(self, entry, status):
        entry["status"] = status
        self.server.state.record(entry)
        if entry["method"] == "POST" and entry["path"].rstrip("/") == SCHEDULED_EVENTS_PATH:
            self.server.state.scheduled.record_post(entry["time"], self.request_body, status)
        if self.server.log_requests:
            target = entry["path"] + ("?" + entry["query"] if entry["query"] else "")
            fault = entry["fault"]
            note = f' (fault {fault["index"]}: {fault["action"]})' if fault else ""
            shown = status if status else "no answer"
            sys.stderr.write(f'{PROG}[{self.server.name}]: {self.client_address[0]} {entry["method"]} {target} -> {shown}{note}\n')
            sys.stderr.flush()

    def _apply_fault(self, fault, action, normal, entry):
        value = fault[action]
        if action == "status":
            answer = fault_status_answer(fault)
            self._finish_entry(entry, answer.status)
            self._send(answer)
        elif action == "delay":
            self._finish_entry(entry, normal.status)
            if self.server.stopping.wait(value):
                self._abort_quietly()
                return
            self._send(normal)
        elif action == "hang":
            self._finish_entry(entry, 0)
            self._hang()
        elif action == "drip":
            self._finish_entry(entry, normal.status)
            self._send(normal, drip=value)
        elif action == "truncate":
            self._finish_entry(entry, normal.status)
            self.close_connection = True
            self._send(normal, body_limit=value)
        elif action == "reset":
            self._finish_entry(entry, 0)
            self._reset_connection()
        elif action == "redirect":
            self._finish_entry(entry, 302)
            self._send(Answer(302, b"", TEXT_TYPE, [("Location", value)]))
        elif action == "oversize":
            self._finish_entry(entry, 200)
            self._send_oversize(value)
        elif action == "non_json":
            self._finish_entry(entry, 200)
            self._send(Answer(200, NON_JSON_BODY.encode("utf-8"), JSON_TYPE))
        elif action == "content_type":
            self._finish_entry(entry, normal.status)
            self._send(Answer(normal.status, normal.body, value, normal.headers))

    # -- control API

    def _control(self, path):
        state = self.server.state
        route = (self.command, path.rstrip("/"))
        if route == ("GET", CONTROL_PREFIX + "/requests"):
            self._send(json_answer(200, {"requests": state.requests()}))
        elif route == ("GET", CONTROL_PREFIX + "/scenario"):
            self._send(json_answer(200, state.scenario))
        elif route == ("PUT", CONTROL_PREFIX + "/scenario"):
            try:
                document = json.loads(self.request_body.decode("utf-8") or "null")
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                self._send(error_answer(400, f"the scenario is not valid JSON: {exc}"))
                return
            try:
                scenario = validate_scenario(document)
            except ScenarioError as exc:
                self._send(error_answer(400, str(exc)))
                return
            state.replace(scenario)
            self._send(json_answer(200, {"status": "ok", "description": scenario["description"]}))
        elif route == ("POST", CONTROL_PREFIX + "/reset"):
            state.reset()
            self._send(json_answer(200, {"status": "ok"}))
        elif route == ("GET", CONTROL_PREFIX + "/scheduled-events"):
            self._send(json_answer(200, state.scheduled.document()))
        elif route == ("GET", CONTROL_PREFIX + "/scheduled-events/approvals"):
            self._send(json_answer(200, {"approvals": state.scheduled.approvals()}))
        elif route == ("POST", CONTROL_PREFIX + "/scheduled-events/events"):
            self._add_scheduled_event(state.scheduled)
        elif path.rstrip("/") in CONTROL_PATHS:
            self._send(method_not_allowed_answer(path, self.command))
        else:
            self._send(error_answer(404, f'unknown control path {path}; use {", ".join(CONTROL_PATHS)}'))

    def _add_scheduled_event(self, scheduled):
        document, parsed = parse_json_body(self.request_body)
        if not parsed:
            self._send(error_answer(400, "the event is not valid JSON"))
            return
        try:
            scheduled.add(validate_scheduled_event(document))
        except ScenarioError as exc:
            self._send(error_answer(400, str(exc)))
            return
        self._send(json_answer(200, {"status": "ok"}))

    # -- writing answers

    def _send_head(self, status, content_type, length, extra_headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in extra_headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _send(self, answer, body_limit=None, drip=None):
        self._send_head(answer.status, answer.content_type, len(answer.body), answer.headers)
        if self.command == "HEAD":
            return
        body = answer.body if body_limit is None else answer.body[:body_limit]
        if drip is None:
            self.wfile.write(body)
            return
        for offset in range(len(body)):
            self.wfile.write(body[offset:offset + 1])
            if self.server.stopping.wait(drip):
                self._abort_quietly()
                return

    def _send_oversize(self, size):
        """A 200 JSON document of exactly `size` bytes, streamed so it never sits in memory."""
        self._send_head(200, JSON_TYPE, size)
        if self.command == "HEAD":
            return
        if size < 14:
            self.wfile.write(b"{}" + b" " * (size - 2))
            return
        head, tail = b'{"padding":"', b'"}'
        self.wfile.write(head)
        remaining = size - len(head) - len(tail)
        chunk = b"x" * STREAM_CHUNK
        while remaining > 0:
            if self.server.stopping.is_set():
                self._abort_quietly()
                return
            piece = chunk[:remaining]
            self.wfile.write(piece)
            remaining -= len(piece)
        self.wfile.write(tail)

    def _hang(self):
        """Say nothing until the client goes away or the emulator stops."""
        self.close_connection = True
        connection = self.connection
        while not self.server.stopping.is_set():
            try:
                readable, _ignored, _ignored = select.select([connection], [], [], 0.1)
                if readable and not connection.recv(4096):
                    return
            except (OSError, ValueError):
                return

    def _reset_connection(self):
        """Close with SO_LINGER 0 so the kernel sends RST instead of FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._abort_quietly()

    def _abort_quietly(self):
        self.close_connection = True
        try:
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass


class _EmulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    timeout = 0  # handle_request() returns at once; the emulator's loop does the waiting

    def __init__(self, address, state, name, log_requests, stopping):
        self.state = state
        self.name = name
        self.log_requests = log_requests
        self.stopping = stopping
        self._connections = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def server_bind(self):
        # HTTPServer.server_bind would resolve the host name; not needed here.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, connection):
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection):
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self):
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)) or self.stopping.is_set():
            return
        sys.stderr.write(f"{PROG}[{self.name}]: error while answering {client_address[0]}: {exc!r}\n")


class _EmulatorServer6(_EmulatorServer):
    address_family = socket.AF_INET6


def _url_host(host):
    return f"[{host}]" if ":" in host else host


class Emulator:
    """One emulated VM's IMDS on one port.

    scenario: a scenario object, a bundled scenario name or a path (default "documented").
    """

    def __init__(self, scenario=None, host="127.0.0.1", port=0, name="default", log_requests=False):
        self.name = name
        self.host = host
        self._requested_port = port
        self._log_requests = log_requests
        self._state = _ServerState(load_scenario("documented" if scenario is None else scenario))
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self._wake_reader = self._wake_writer = None

    # -- lifecycle

    def start(self):
        if self._server is not None:
            raise RuntimeError(f"emulator {self.name} is already started")
        server_class = _EmulatorServer6 if ":" in self.host else _EmulatorServer
        self._stopping.clear()
        self._server = server_class((self.host, self._requested_port), self._state, self.name, self._log_requests, self._stopping)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name=f"imds-emulator-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _serve(self):
        server = self._server
        while not self._stopping.is_set():
            try:
                readable, _ignored, _ignored = select.select([server.socket, self._wake_reader], [], [])
            except (OSError, ValueError):
                return
            if server.socket in readable and not self._stopping.is_set():
                server.handle_request()

    def stop(self):
        """Stop listening, end open connections (hanging ones included) and wait for the loop."""
        if self._server is None:
            return
        self._stopping.set()
        try:
            self._wake_writer.send(b"x")
        except OSError:
            pass
        self._thread.join(5)
        self._server.close_connections()
        self._server.server_close()
        self._wake_reader.close()
        self._wake_writer.close()
        self._server = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- information and control

    @property
    def port(self):
        if self._server is None:
            raise RuntimeError(f"emulator {self.name} is not started")
        return self._server.server_address[1]

    @property
    def endpoint(self):
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def scenario(self):
        return copy.deepcopy(self._state.scenario)

    def requests(self):
        """The IMDS requests seen so far (control API calls excluded), oldest first."""
        return self._state.requests()

    def set_scenario(self, scenario):
        """Replace the scenario; resets faults, rate limiter and request log."""
        self._state.replace(load_scenario(scenario))

    def reset(self):
        """Clear the request log, fault progress and rate limiter; scheduled events start over."""
        self._state.reset()

    def scheduled_events(self):
        """The scheduled events document as it would be served now."""
        return self._state.scheduled.document()

    def approvals(self):
        """Every POST to /metadata/scheduledevents so far: time, event_ids, status, body."""
        return self._state.scheduled.approvals()

    def add_scheduled_event(self, event):
        """Add one event (as in a scenario, with appear_after / not_before_in); raises ScenarioError when invalid."""
        self._state.scheduled.add(validate_scheduled_event(event))


class Fleet:
    """Many emulated VMs in one process, each with its own port and state."""

    def __init__(self, hosts, host="127.0.0.1", log_requests=False):
        self.emulators = {}
        for spec in hosts:
            if spec.name in self.emulators:
                raise ScenarioError(f"duplicate host name {spec.name!r}")
            self.emulators[spec.name] = Emulator(spec.scenario, host=spec.host or host, port=spec.port, name=spec.name, log_requests=log_requests)

    def start(self):
        try:
            for emulator in self.emulators.values():
                emulator.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for emulator in self.emulators.values():
            emulator.stop()

    @property
    def endpoints(self):
        return {name: emulator.endpoint for name, emulator in self.emulators.items()}

    def __getitem__(self, name):
        return self.emulators[name]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


# --------------------------------------------------------------------------- command line

class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        raise ScenarioError(message)


def _build_parser():
    parser = _ArgumentParser(
        prog="imds_emulator.py",
        description="Emulate the Azure Instance Metadata Service on a local port.",
        epilog=f'Bundled scenarios: {", ".join(bundled_scenarios())}. See docs/emulator.md.',
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--scenario", metavar="NAME_OR_PATH", help="bundled scenario name or path to a scenario JSON file")
    source.add_argument("--fleet", metavar="FLEET_JSON", help="fleet file: one emulated VM per host, each on its own port")
    source.add_argument("--list-scenarios", action="store_true", help="print the bundled scenario names and exit")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port for --scenario; 0 picks a free one (default 8080)")
    parser.add_argument("--ready-file", metavar="PATH", help="also write the endpoints JSON to this file once listening")
    parser.add_argument("--log-requests", action="store_true", help="print one line per IMDS request to stderr")
    return parser


def write_ready_file(path, text):
    """Write atomically: readers see either nothing or the whole document."""
    directory = os.path.dirname(os.path.abspath(path))
    descriptor, temporary = tempfile.mkstemp(prefix=".imds-ready-", dir=directory)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _wait_for_termination(signals):
    if hasattr(signal, "sigwait"):
        signal.sigwait(signals)
        return
    try:  # platforms without sigwait: poll and let SIGINT raise
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def _fail(message):
    sys.stderr.write(f"{PROG}: error: {message}\n")
    return 2


def main(argv=None):
    try:
        args = _build_parser().parse_args(argv)
        if args.list_scenarios:
            print("\n".join(bundled_scenarios()))
            return 0
        if not 0 <= args.port <= 65535:
            raise ScenarioError("--port must be between 0 and 65535")
        if args.fleet:
            group = Fleet(load_fleet(args.fleet), host=args.host, log_requests=args.log_requests)
        else:
            group = Fleet([HostSpec("default", load_scenario(args.scenario), args.port)], host=args.host, log_requests=args.log_requests)
    except ScenarioError as exc:
        return _fail(str(exc))

    termination = {signal.SIGINT, signal.SIGTERM}
    # Block the signals before any server thread starts: every thread inherits
    # the mask, so sigwait() receives them, even one sent during start-up.
    blocking = hasattr(signal, "pthread_sigmask")
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, termination) if blocking else None
    try:
        return _serve_until_terminated(group, args.ready_file, termination)
    finally:
        if blocking:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def _serve_until_terminated(group, ready_file, termination):
    # One emulator at a time, so that a port that is taken can be named.
    for emulator in group.emulators.values():
        try:
            emulator.start()
        except OSError as exc:
            group.stop()
            address = f"{_url_host(emulator.host)}:{emulator._requested_port}"  # pylint: disable=protected-access
            return _fail(f"cannot listen on {address} ({emulator.name}): {exc.strerror or exc}")
    try:
        ready = json.dumps({"endpoints": group.endpoints})
        if ready_file:
            try:
                write_ready_file(ready_file, ready)
            except OSError as exc:
                return _fail(f"cannot write ready file {ready_file}: {exc.strerror or exc}")
        try:
            sys.stdout.write(ready + "\n")
            sys.stdout.flush()
        except OSError:
            pass  # nobody reads stdout; the ready file may still be in use
        _wait_for_termination(termination)
    finally:
        group.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
