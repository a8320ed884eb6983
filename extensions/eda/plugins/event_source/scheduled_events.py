# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An ansible-rulebook event source: Azure Scheduled Events (and load balancer changes) from IMDS.

It runs on the VM itself (IMDS answers only there), polls
/metadata/scheduledevents through the collection's IMDS client, and puts one
event on the queue for each event id that appears, changes status or ends.
The reads block, so they run in a worker thread; everything that decides what
to emit and when to poll next is a pure function or a small class without I/O
(unit tests in tests/unit/extensions/eda/plugins/event_source/).
"""

import asyncio
import concurrent.futures
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional


DOCUMENTATION = r"""
---
short_description: Azure Scheduled Events from the Instance Metadata Service, as events.
description:
  - An ansible-rulebook event source plugin that polls the Azure Instance Metadata Service (IMDS) for Scheduled
    Events (reboots, redeployments, freezes, preemptions and terminations Azure announces for the VM) and puts one
    event on the queue each time an event id appears, changes status (C(Scheduled) to C(Started)) or ends.
  - It must run on the VM itself, as IMDS answers only there, for example as an C(ansible-rulebook) service on each
    VM whose rules run playbooks on C(localhost), such as the drain playbook of the collection's examples.
  - Reads go through the collection's IMDS client (the C(Metadata) header, no proxy, no redirects, a bounded body,
    at most 5 requests a second) with one client for the life of the source.
  - On average at most one IMDS request is sent per O(interval), whatever happens; a failed read (IMDS down, an
    error answer, a document of unknown shape) is logged, emits nothing, and the next poll waits longer
    (exponential backoff up to O(backoff_max)).
  - "Each event put on the queue is a dict: C(scheduled_event) (the event as M(imds.azure.scheduled_events_info)
    returns it: id, type, status, resource_type, resources, source, description, duration_seconds, not_before,
    not_before_epoch), C(for_this_vm) (whether its resources name this VM), C(vm_name), C(incarnation) (the
    DocumentIncarnation it was seen in) and C(change): C(new), C(changed) (its status changed) or C(ended) (it is
    no longer in the document; C(scheduled_event) is then the event as last seen)."
  - "After the first successful read, one C({scheduled_events: {incarnation, vm_name, events, for_this_vm}, change:
    first_read}) event with the number of events in the document and of those that affect this VM, so that a rule
    can finish what a restart (a reboot of the VM) interrupted, such as turning a drain off."
  - With O(include_loadbalancer), also C({loadbalancer, change}) events, where C(loadbalancer) holds the
    C(azure_loadbalancer) facts of M(imds.azure.loadbalancer_facts) and C(change) is C(changed), the first time
    they are read and each time they differ from the last read.
options:
  endpoint:
    description:
      - Base URL of IMDS, a plain C(http://host[:port]) URL.
      - When not set or empty, the Azure address C(http://169.254.169.254) is used, after the DMI check that this
        host is an Azure VM.
    type: str
  interval:
    description:
      - Seconds between polls; also the average time between IMDS requests the source never goes below.
      - At least 1. Azure gives at least 15 minutes notice of a reboot or redeployment, 30 seconds of a
        preemption.
    type: float
    default: 10
  backoff_max:
    description:
      - Longest wait in seconds between polls while reads keep failing. The wait doubles with each failed read,
        from twice O(interval) up to this (never less than O(interval)).
    type: float
    default: 60
  vm_name:
    description:
      - Name of this VM, matched without regard to case against each event's resources (C(for_this_vm)).
      - When not set, read once from IMDS (C(/metadata/instance/compute/name)) before the first events are read.
    type: str
  only_this_vm:
    description:
      - Emit only events that affect this VM. By default events of every VM in the availability set or placement
        group are emitted, each with C(for_this_vm).
    type: bool
    default: false
  include_loadbalancer:
    description:
      - Also read C(/metadata/loadbalancer), at most every O(loadbalancer_interval) seconds, and emit its facts when
        they change.
    type: bool
    default: false
  loadbalancer_interval:
    description:
      - Seconds between reads of the load balancer metadata when O(include_loadbalancer) is set (at least
        O(interval)). Its requests count against the one request per O(interval).
    type: float
    default: 60
  timeout:
    description:
      - Seconds one IMDS request may take. The first Scheduled Events request of a VM can take up to about two
        minutes (Azure enables the service then), hence the default.
    type: float
    default: 150
  retry_timeout:
    description:
      - Seconds the client may spend retrying a transient answer (410, 429, 500, 503) within one read.
      - The default, 0, sends one request per read and leaves retries to the next poll and its backoff.
    type: float
    default: 0
notes:
  - Needs ansible-rulebook (Python 3.9+, Java 17+) and the collection installed in a collections path
    (C(ansible-galaxy collection install imds.azure)); the plugin imports the collection's IMDS client from there.
  - Stopping ansible-rulebook stops the source at once; a request in flight is abandoned.
"""

EXAMPLES = r"""
- name: Drain before Azure maintenance
  hosts: all
  sources:
    - imds.azure.scheduled_events:
        interval: 10
  rules:
    - name: Drain this VM before an event that affects it
      condition: event.for_this_vm == true and event.change == "new"
      action:
        run_playbook:
          name: examples/maintenance/drain.yml

- name: Every scheduled event of the availability set, and load balancer changes
  hosts: localhost
  sources:
    - imds.azure.scheduled_events:
        endpoint: http://127.0.0.1:8080
        interval: 5
        include_loadbalancer: true
  rules:
    - name: Show them
      condition: event.change is defined
      action:
        print_event:
"""

SOURCE_NAME = "imds.azure.scheduled_events"
logger = logging.getLogger(SOURCE_NAME)


# --------------------------------------------------------------------------- the collection's module_utils

# Where this file sits in an installed collection:
# <path>/ansible_collections/imds/azure/extensions/eda/plugins/event_source/scheduled_events.py
_LAYOUT = ("ansible_collections", "imds", "azure", "extensions", "eda", "plugins", "event_source")


def collections_root(plugin_file: str) -> Optional[str]:
    """The collections path (the directory holding ``ansible_collections``) this plugin file was installed in.

    ansible-rulebook runs a source plugin as a file (runpy.run_path), so the
    collection's own ``ansible_collections.imds.azure`` package is importable
    only when its collections path is on sys.path. None when the file is not
    laid out as in an installed collection.
    """
    directory = os.path.dirname(os.path.abspath(plugin_file))
    for expected in reversed(_LAYOUT):
        directory, name = os.path.split(directory)
        if name != expected:
            return None
    return directory


def _import_module_utils():
    """Make the collection this file belongs to importable, then import what the source uses from it."""
    root = collections_root(__file__) if "__file__" in globals() else None
    if root is not None and root not in sys.path:
        # First, so that this copy of the collection is the one imported, not another in a later path.
        sys.path.insert(0, root)
    # pylint: disable=import-outside-toplevel
    from ansible_collections.imds.azure.plugins.module_utils import _imds, _scheduled_events
    return _imds, _scheduled_events


try:
    _imds, _scheduled_events = _import_module_utils()
    _IMPORT_ERROR = None
except ImportError as exc:  # reported by main(), where ansible-rulebook shows it as the source's error
    _imds = _scheduled_events = None
    _IMPORT_ERROR = exc


# --------------------------------------------------------------------------- settings

DEFAULT_INTERVAL = 10.0
MIN_INTERVAL = 1.0
MAX_INTERVAL = 86400.0
DEFAULT_BACKOFF_MAX = 60.0
DEFAULT_LOADBALANCER_INTERVAL = 60.0
DEFAULT_RETRY_TIMEOUT = 0.0
LOADBALANCER_PATH = "loadbalancer"
LOADBALANCER_API_VERSION = "2020-10-01"

_KNOWN_ARGS = frozenset((
    "endpoint", "interval", "backoff_max", "vm_name", "only_this_vm", "include_loadbalancer",
    "loadbalancer_interval", "timeout", "retry_timeout",
))
# ansible-rulebook adds these to every source's arguments.
_RULEBOOK_ARGS = frozenset(("eda_feedback_queue",))
_TRUE = frozenset(("true", "yes", "on", "1"))
_FALSE = frozenset(("false", "no", "off", "0"))


class SettingsError(ValueError):
    """An argument of the source is not valid; the message names it."""


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _seconds(args: Dict[str, Any], name: str, default: float, low: float, high: float = MAX_INTERVAL) -> float:
    value = args.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if isinstance(value, bool) or number is None or not low <= number <= high:
        raise SettingsError(f"{name} must be a number of seconds from {low:g} to {high:g}, got {_shown(value)}.")
    return number


def _boolean(args: Dict[str, Any], name: str) -> bool:
    value = args.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise SettingsError(f"{name} must be true or false, got {_shown(value)}.")


def _text(args: Dict[str, Any], name: str, limit: int) -> Optional[str]:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > limit:
        raise SettingsError(f"{name} must be a non-empty string of at most {limit} characters, got {_shown(value)}.")
    return value.strip()


def source_settings(args: Dict[str, Any]) -> Dict[str, Any]:
    """The source's arguments checked, with defaults filled in; SettingsError names what is wrong."""
    if not isinstance(args, dict):
        raise SettingsError(f"the arguments must be a mapping, got {_shown(args)}.")
    unknown = sorted(str(name) for name in set(args) - _KNOWN_ARGS - _RULEBOOK_ARGS)
    if unknown:
        raise SettingsError(f"unknown argument(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN_ARGS))}.")
    interval = _seconds(args, "interval", DEFAULT_INTERVAL, MIN_INTERVAL)
    endpoint = args.get("endpoint")
    if endpoint is not None and not isinstance(endpoint, str):
        raise SettingsError(f"endpoint must be a string, got {_shown(endpoint)}.")
    # Empty means not set, so that a rulebook can write endpoint: "{{ imds_endpoint | default('') }}".
    endpoint = endpoint.strip() or None if endpoint is not None else None
    return {
        "endpoint": endpoint,
        "interval": interval,
        "backoff_max": max(_seconds(args, "backoff_max", DEFAULT_BACKOFF_MAX, MIN_INTERVAL), interval),
        "vm_name": _text(args, "vm_name", _scheduled_events.MAX_NAME_LENGTH),
        "only_this_vm": _boolean(args, "only_this_vm"),
        "include_loadbalancer": _boolean(args, "include_loadbalancer"),
        "loadbalancer_interval": max(_seconds(args, "loadbalancer_interval", DEFAULT_LOADBALANCER_INTERVAL,
                                              MIN_INTERVAL), interval),
        # As the modules: long enough for the first request, which Azure answers once the service is enabled.
        "timeout": _seconds(args, "timeout", _scheduled_events.SCHEDULED_EVENTS_TIMEOUT, 0.001, 300.0),
        "retry_timeout": _seconds(args, "retry_timeout", DEFAULT_RETRY_TIMEOUT, 0.0, 3600.0),
    }


# --------------------------------------------------------------------------- what to emit

class EventTracker:
    """Remembers each event id's last status and turns a new document into the events to emit.

    An event is emitted when its id is seen for the first time (``new``), when
    its status differs from the last one seen (``changed``) and when it is no
    longer in the document (``ended``); the first document read also gives one
    ``first_read`` summary. A failed read never reaches it, so it changes
    nothing.
    """

    def __init__(self, event_key: Callable[[dict], tuple], only_this_vm: bool = False):
        self._event_key = event_key
        self._only_this_vm = only_this_vm
        self._seen: Dict[str, tuple] = {}   # id -> (key, queue event as last seen)
        self._read_once = False

    def update(self, events: List[dict], for_this_vm: List[dict], vm_name: str, incarnation: int) -> List[dict]:
        """Queue events for one normalised document: ``events`` all of its events, ``for_this_vm`` those of this VM."""
        mine = {self._event_key(event)[0] for event in for_this_vm}
        emitted = []
        current = {}
        for event in events:
            key = self._event_key(event)
            event_id = key[0]
            affects_this_vm = event_id in mine
            if self._only_this_vm and not affects_this_vm:
                continue
            if event_id in current:
                continue  # the same id twice in one document: the first one counts
            message = {"scheduled_event": event, "for_this_vm": affects_this_vm, "vm_name": vm_name,
                       "incarnation": incarnation}
            previous = self._seen.get(event_id)
            current[event_id] = (key, message)
            if previous is None:
                emitted.append(dict(message, change="new"))
            elif previous[0] != key:
                emitted.append(dict(message, change="changed"))
        for event_id, (_key, message) in self._seen.items():
            if event_id not in current:
                emitted.append(dict(message, incarnation=incarnation, change="ended"))
        if not self._read_once:
            # After a restart (say the VM came back from a reboot) nothing may be new: this tells rules it started.
            self._read_once = True
            emitted.append({"scheduled_events": {"incarnation": incarnation, "vm_name": vm_name,
                                                 "events": len(events), "for_this_vm": len(mine)},
                            "change": "first_read"})
        self._seen = current
        return emitted


class LoadBalancerTracker:
    """Emits the load balancer facts the first time they are read and whenever they differ from the last read."""

    def __init__(self):
        self._last: Optional[dict] = None

    def update(self, facts: dict) -> List[dict]:
        if facts == self._last:
            return []
        self._last = facts
        return [{"loadbalancer": facts, "change": "changed"}]


# --------------------------------------------------------------------------- when to poll

def failure_backoff(interval: float, failures: int, backoff_max: float) -> float:
    """Seconds to wait after the ``failures``-th failed poll in a row: 2, 4, 8... times interval, capped."""
    if failures <= 0:
        return interval
    # The exponent is bounded so that a long outage cannot overflow the float.
    return min(interval * 2.0 ** min(failures, 32), max(backoff_max, interval))


def next_poll_delay(now: float, poll_started: float, source_started: float, requests: int, interval: float,
                    failures: int, backoff_max: float) -> float:
    """Seconds from ``now`` until the next poll may start.

    Three rules, the latest wins:
    - polls start at least ``interval`` apart;
    - the IMDS requests sent since the source started (``requests``, retries
      and load balancer reads included) stay at one per ``interval`` on
      average: request N+1 is not sent before N intervals have passed;
    - after a failed poll, the backoff of failure_backoff() from now.
    """
    start_at = max(poll_started + interval, source_started + requests * interval)
    if failures:
        start_at = max(start_at, now + failure_backoff(interval, failures, backoff_max))
    return max(0.0, start_at - now)


# --------------------------------------------------------------------------- reading IMDS

class SourceStopped(Exception):
    """The source was stopped while a read waited (between retries or for the rate limit)."""


class ScheduledEventsReader:
    """Everything one poll does, blocking: runs in a worker thread, one poll at a time.

    Holds the one ImdsClient of the source (so its 5-requests-a-second pacing
    holds across polls) and the trackers; ``poll()`` returns the queue events
    of this poll and never raises for a failed read.
    """

    def __init__(self, settings: Dict[str, Any], clock: Callable[[], float] = time.monotonic):
        self.settings = settings
        self.clock = clock
        self._stop = threading.Event()
        self.client = _imds.ImdsClient(endpoint=settings["endpoint"], timeout=settings["timeout"],
                                       retry_timeout=settings["retry_timeout"], clock=clock, sleep=self._sleep)
        self.vm_name = settings["vm_name"]
        self.events = EventTracker(_scheduled_events.event_key, settings["only_this_vm"])
        self.loadbalancer = LoadBalancerTracker()
        self.failures = 0
        self.polls = 0
        self.started = clock()
        self._loadbalancer_read_at: Optional[float] = None

    # A stop wakes the client from any wait it is in; a request already sent runs to its timeout.
    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(max(seconds, 0.0)):
            raise SourceStopped()

    def stop(self) -> None:
        self._stop.set()

    @property
    def requests(self) -> int:
        """IMDS requests sent so far (connection attempts included)."""
        return self.client.attempts

    def poll(self) -> List[dict]:
        """Read IMDS once; the queue events to emit (none for a failed read)."""
        self.polls += 1
        emitted = []
        failed = False
        try:
            emitted += self._read_scheduled_events()
        except SourceStopped:
            raise
        except Exception as exc:  # pylint: disable=broad-except
            # Whatever a read meets (ImdsError, or a shape nothing foresaw) costs this poll, never the source.
            failed = True
            self._log_failure("scheduled events", exc)
        if self.settings["include_loadbalancer"] and self._loadbalancer_due():
            self._loadbalancer_read_at = self.clock()
            try:
                emitted += self.loadbalancer.update(self._read_loadbalancer())
            except SourceStopped:
                raise
            except Exception as exc:  # pylint: disable=broad-except
                failed = True
                self._log_failure("load balancer metadata", exc)
        if failed:
            self.failures += 1
        else:
            if self.failures:
                logger.warning("%s: IMDS reads succeed again after %d failed poll(s)", SOURCE_NAME, self.failures)
            self.failures = 0
        return emitted

    def next_delay(self, poll_started: float) -> float:
        return next_poll_delay(self.clock(), poll_started, self.started, self.requests, self.settings["interval"],
                               self.failures, self.settings["backoff_max"])

    def _log_failure(self, what: str, exc: Exception) -> None:
        code = getattr(exc, "code", None) or type(exc).__name__
        message = _imds.short_text(str(getattr(exc, "message", exc)), 300)
        logger.warning("%s: reading %s failed (%s): %s Nothing emitted; the next poll backs off (failed polls in "
                       "a row: %d).", SOURCE_NAME, what, code, message.rstrip(".") + ".", self.failures + 1)

    def _read_scheduled_events(self) -> List[dict]:
        # Read once: until it is known, each poll starts with it.
        self.vm_name = vm_name = _scheduled_events.read_vm_name(self.client, self.vm_name)
        normalised = _scheduled_events.read_scheduled_events(self.client)
        events = normalised["events"]
        return self.events.update(events, _scheduled_events.events_for_vm(events, vm_name), vm_name,
                                  normalised["incarnation"])

    def _loadbalancer_due(self) -> bool:
        read_at = self._loadbalancer_read_at
        return read_at is None or self.clock() - read_at >= self.settings["loadbalancer_interval"]

    def _read_loadbalancer(self) -> dict:
        # pylint: disable=import-outside-toplevel
        from ansible_collections.imds.azure.plugins.module_utils._facts_shape import unavailable_facts
        from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import (
            LoadBalancerDataError,
            normalize_loadbalancer,
        )
        try:
            document = self.client.get_json(LOADBALANCER_PATH, api_version=LOADBALANCER_API_VERSION)
        except _imds.ImdsError as exc:
            if exc.code != "no_loadbalancer":
                raise
            return unavailable_facts("no_loadbalancer", exc.message, LOADBALANCER_API_VERSION)
        try:
            return normalize_loadbalancer(document, LOADBALANCER_API_VERSION)
        except LoadBalancerDataError as exc:
            raise _imds.ImdsError(f"the load balancer metadata cannot be trusted: {exc}", code="invalid_metadata")


class _DaemonThreadExecutor(concurrent.futures.Executor):
    """Runs each call in a new daemon thread.

    A blocking IMDS request cannot be interrupted; in a daemon thread it never
    holds up ansible-rulebook's exit the way a ThreadPoolExecutor's worker
    (joined at interpreter exit) would.
    """

    def submit(self, fn, /, *args, **kwargs):
        future: concurrent.futures.Future = concurrent.futures.Future()

        def run():
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # pylint: disable=broad-except
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=run, name="imds-scheduled-events", daemon=True).start()
        return future


# --------------------------------------------------------------------------- entry point

async def main(queue: asyncio.Queue, args: Dict[str, Any]) -> None:
    """Poll IMDS until cancelled, putting one event on ``queue`` per new, changed or ended scheduled event."""
    if _IMPORT_ERROR is not None:
        raise RuntimeError(f"{SOURCE_NAME}: cannot import the imds.azure collection's IMDS client "
                           f"({_IMPORT_ERROR}); install the collection with ansible-galaxy collection install and run "
                           "the source from there.")
    try:
        settings = source_settings(args)
        reader = ScheduledEventsReader(settings)
    except (SettingsError, _imds.ImdsError) as exc:
        raise ValueError(f"{SOURCE_NAME}: {getattr(exc, 'message', exc)}") from None
    loop = asyncio.get_running_loop()
    executor = _DaemonThreadExecutor()
    logger.info("%s: polling %s every %g s", SOURCE_NAME, reader.client.endpoint, settings["interval"])
    try:
        while True:
            poll_started = reader.clock()
            try:
                emitted = await loop.run_in_executor(executor, reader.poll)
            except SourceStopped:
                return
            for event in emitted:
                await queue.put(event)
            await asyncio.sleep(reader.next_delay(poll_started))
    finally:
        # Wakes a read waiting in the worker thread; ansible-rulebook's cancellation goes on up.
        reader.stop()
        logger.info("%s: stopped after %d poll(s) and %d IMDS request(s)", SOURCE_NAME, reader.polls,
                    reader.requests)


if __name__ == "__main__":
    # Run alone against an endpoint (python scheduled_events.py http://127.0.0.1:8080): print what it would emit.
    class _PrintQueue:
        async def put(self, event):
            print(event, flush=True)

    logging.basicConfig(level=logging.INFO)
    asyncio.run(main(_PrintQueue(), {"endpoint": sys.argv[1] if len(sys.argv) > 1 else None, "interval": 2}))
