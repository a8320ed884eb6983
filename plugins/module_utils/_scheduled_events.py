# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Azure Scheduled Events (/metadata/scheduledevents): the document normalised, and what an approval sends.

The functions that shape data are pure: they either return plain data or
raise ImdsError with code ``invalid_metadata`` and a message that names the
field, so a caller never acts on part of a document. Keys are matched without
regard to case, underscores or dashes, unknown keys are ignored, and known
values (event types, statuses, sources) get Azure's spelling. A value Azure
may add later (a new event type) is kept as written rather than refused, so
that a new kind of maintenance is still reported. Only read_scheduled_events
and read_vm_name talk to IMDS, through the client they are given.

Standard library only and Python 3.6 compatible: the modules and the
event-driven source both import it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsError, ascii_digits, imds_argument_spec, shown

SCHEDULED_EVENTS_PATH = 'scheduledevents'
SCHEDULED_EVENTS_API_VERSION = '2020-07-01'
# The api-versions Azure documents for this path.
SCHEDULED_EVENTS_API_VERSIONS = ('2017-11-01', '2019-01-01', '2019-08-01', '2020-07-01')
# Azure's answer to the first request of a VM (which enables the service) can take about two minutes.
SCHEDULED_EVENTS_TIMEOUT = 150.0
VM_NAME_PATH = 'instance/compute/name'
VM_NAME_API_VERSION = '2021-02-01'

EVENT_TYPES = ('Freeze', 'Reboot', 'Redeploy', 'Preempt', 'Terminate')
EVENT_STATUSES = ('Scheduled', 'Started')
EVENT_SOURCES = ('Platform', 'User')
RESOURCE_TYPES = ('VirtualMachine',)
SCHEDULED = 'Scheduled'

# Longest texts kept: identifiers and names are far shorter; a description is a sentence or two.
MAX_NAME_LENGTH = 256
MAX_DESCRIPTION_LENGTH = 2000

_MONTHS = ('jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec')
_WEEKDAYS = ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')
_UTC_ZONES = ('GMT', 'UTC', 'UT', 'Z', '+0000', '-0000')


def _invalid(path, problem):
    return ImdsError('IMDS returned scheduled events that cannot be used: %s: %s.' % (path, problem),
                     code='invalid_metadata')


def _key_index(mapping, path):
    """{folded key: (key as spelled, value)}; two spellings of one key must agree, or neither is trusted."""
    if not isinstance(mapping, dict):
        raise _invalid(path, 'expected an object, got %s' % shown(mapping))
    index = {}
    for key, value in mapping.items():
        folded = key.replace('_', '').replace('-', '').lower() if isinstance(key, str) else None
        if folded in index and index[folded][1] != value:
            raise _invalid(path, '%s and %s are the same key with different values'
                           % (shown(index[folded][0]), shown(key)))
        if folded is not None:
            index.setdefault(folded, (key, value))
    return index


def _value(index, name, path):
    """(path of the field, its value or None) for a key in a _key_index() index."""
    key, value = index.get(name.lower(), (name, None))
    return '%s.%s' % (path, key[:60]), value


def _text(value, path, limit=MAX_NAME_LENGTH, allow_empty=False, multiline=False):
    """A string, stripped, of at most ``limit`` characters and no control characters (``multiline``: bar tabs and
    line breaks)."""
    if not isinstance(value, str):
        raise _invalid(path, 'expected a string, got %s' % shown(value))
    text = value.strip()
    if (not text and not allow_empty) or len(text) > limit:
        raise _invalid(path, 'expected %d to %d characters, got %s' % (0 if allow_empty else 1, limit, shown(value)))
    allowed = '\t\n\r' if multiline else ''
    if any((ord(char) < 32 or ord(char) == 127) and char not in allowed for char in text):
        raise _invalid(path, '%s holds control characters' % shown(value))
    return text


def _word(value, path, known):
    """A value such as an event type: Azure's spelling when it is a known one, else the text as written."""
    text = _text(value, path, limit=64)
    for spelling in known:
        if spelling.lower() == text.lower():
            return spelling
    return text


def _whole_number(value, path, low):
    """An int of at least ``low``, from a JSON integer or a string of ASCII digits (with a leading minus)."""
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith('-') else text
        if len(digits) > 12 or not ascii_digits(digits):
            raise _invalid(path, '%s is not a whole number' % shown(value))
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(path, 'expected a whole number, got %s' % shown(value))
    if not low <= value < 2 ** 53:
        raise _invalid(path, '%s is out of range' % shown(value))
    return value


def _days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def parse_not_before(value, path='NotBefore'):
    """(ISO 8601 UTC text, epoch seconds) of an RFC 1123 date such as 'Thu, 22 Jul 2021 04:50:17 GMT'.

    (None, None) when Azure sends none (empty, null or missing). Anything else
    that is not such a date in UTC is refused.
    """
    if value is None:
        return None, None
    text = _text(value, path, limit=64, allow_empty=True)
    if not text:
        return None, None
    parts = text.replace(',', ' ').split()
    if parts and parts[0][:3].lower() in _WEEKDAYS:
        parts = parts[1:]
    fields = None
    if len(parts) == 5 and parts[4].upper() in _UTC_ZONES and parts[1][:3].lower() in _MONTHS:
        clock = parts[3].split(':')
        numbers = [parts[0], parts[2]] + clock
        if len(clock) == 3 and all(ascii_digits(number) and len(number) <= 4 for number in numbers):
            fields = [int(parts[2]), _MONTHS.index(parts[1][:3].lower()) + 1, int(parts[0])] + [int(n) for n in clock]
    if fields is None:
        raise _invalid(path, '%s is not a date like "Thu, 22 Jul 2021 04:50:17 GMT"' % shown(value))
    year, month, day, hour, minute, second = fields
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    month_days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    if not (1970 <= year <= 9999 and 1 <= day <= month_days and hour < 24 and minute < 60 and second < 60):
        raise _invalid(path, '%s is not a valid date and time' % shown(value))
    epoch = ((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    return '%04d-%02d-%02dT%02d:%02d:%02dZ' % tuple(fields), epoch


def normalize_event(entry, path):
    """One event of the document, with the collection's keys (see normalize_scheduled_events)."""
    index = _key_index(entry, path)

    def required(name, normalize, *args):
        field_path, value = _value(index, name, path)
        if value is None:
            raise _invalid(field_path, 'missing')
        return normalize(value, field_path, *args)

    resources_path, resources = _value(index, 'Resources', path)
    if isinstance(resources, str):
        resources = [resources]
    if not isinstance(resources, list):
        raise _invalid(resources_path, 'expected a list of VM names, got %s' % shown(resources))
    duration_path, duration = _value(index, 'DurationInSeconds', path)
    duration = None if duration is None else _whole_number(duration, duration_path, -1)
    source_path, source = _value(index, 'EventSource', path)
    description_path, description = _value(index, 'Description', path)
    not_before_path, not_before = _value(index, 'NotBefore', path)
    not_before, not_before_epoch = parse_not_before(not_before, not_before_path)
    if description is not None:
        description = _text(description, description_path, MAX_DESCRIPTION_LENGTH, allow_empty=True, multiline=True)
    return {
        'id': required('EventId', _text),
        'type': required('EventType', _word, EVENT_TYPES),
        'status': required('EventStatus', _word, EVENT_STATUSES),
        'resource_type': required('ResourceType', _word, RESOURCE_TYPES),
        'resources': [_text(name, '%s[%d]' % (resources_path, number)) for number, name in enumerate(resources)],
        'source': '' if source is None else _word(source, source_path, EVENT_SOURCES),
        'description': description or '',
        'duration_seconds': None if duration == -1 else duration,
        'not_before': not_before,
        'not_before_epoch': not_before_epoch,
    }


def normalize_scheduled_events(document):
    """The scheduled events document as ``{'incarnation': int, 'events': [event, ...]}``.

    Each event is ``{'id', 'type', 'status', 'resource_type', 'resources', 'source', 'description',
    'duration_seconds' (None when Azure sends -1 or none), 'not_before' ('YYYY-MM-DDTHH:MM:SSZ' or None),
    'not_before_epoch' (int or None)}``, in the document's order. ``Events`` may be empty (the usual
    state) or null; a missing ``DocumentIncarnation`` or ``Events``, or two different events with one id,
    are refused.
    """
    index = _key_index(document, 'response')
    incarnation_path, incarnation = _value(index, 'DocumentIncarnation', 'response')
    if incarnation is None:
        raise _invalid(incarnation_path, 'missing')
    events_path, entries = _value(index, 'Events', 'response')
    if entries is None and 'events' not in index:
        raise _invalid(events_path, 'missing')
    if not isinstance(entries, (list, type(None))):
        raise _invalid(events_path, 'expected a list, got %s' % shown(entries))
    events = []
    by_id = {}
    for number, entry in enumerate(entries or []):
        event = normalize_event(entry, '%s[%d]' % (events_path, number))
        earlier = by_id.setdefault(event['id'], event)
        if earlier is event:
            events.append(event)
        elif earlier != event:
            raise _invalid('%s[%d].EventId' % (events_path, number),
                           'two different events have the id %s' % shown(event['id']))
    return {'incarnation': _whole_number(incarnation, incarnation_path, 0), 'events': events}


def events_for_vm(events, vm_name):
    """The events whose resources name ``vm_name`` (compared without regard to case)."""
    wanted = (vm_name or '').strip().lower()
    return [event for event in events if wanted and wanted in [name.lower() for name in event['resources']]]


def event_key(event):
    """(id, status): an event is new or changed for a watcher when this pair is."""
    return event['id'], event['status']


def plan_approval(events, event_ids, vm_name=None, only_this_vm=True):
    """Sort the requested ids into what to approve and what not, and why.

    Returns ``{'approved', 'already_started', 'not_found', 'not_for_this_vm'}``, lists of ids in the
    order asked (each id once). Only Scheduled events are approved; ids match without regard to case
    and are reported as the document spells them; with ``only_this_vm``, events that do not name
    ``vm_name`` are left alone.
    """
    by_id = dict((event['id'].lower(), event) for event in events)
    mine = set(event['id'] for event in events_for_vm(events, vm_name))
    plan = {'approved': [], 'already_started': [], 'not_found': [], 'not_for_this_vm': []}
    seen = set()
    for requested in event_ids:
        event = by_id.get(requested.strip().lower())
        reported = event['id'] if event is not None else requested
        if reported in seen:
            continue
        seen.add(reported)
        if event is None:
            plan['not_found'].append(reported)
        elif only_this_vm and reported not in mine:
            plan['not_for_this_vm'].append(reported)
        elif event['status'] != SCHEDULED:
            plan['already_started'].append(reported)
        else:
            plan['approved'].append(reported)
    return plan


def start_requests(event_ids):
    """The body Azure documents for approving events: ``{"StartRequests": [{"EventId": id}, ...]}``."""
    return {'StartRequests': [{'EventId': event_id} for event_id in event_ids]}


# -- the modules' options and reading through the client ----------------------------------------

def scheduled_events_argument_spec():
    """The options of both scheduled events modules (the imds and imds.SCHEDULED_EVENTS doc fragments)."""
    spec = imds_argument_spec(SCHEDULED_EVENTS_API_VERSION, SCHEDULED_EVENTS_TIMEOUT)
    spec['vm_name'] = dict(type='str')
    return spec


def read_scheduled_events(client, api_version=SCHEDULED_EVENTS_API_VERSION):
    """GET the document and normalise it; ImdsError on any failure."""
    return normalize_scheduled_events(client.get_json(SCHEDULED_EVENTS_PATH, api_version=api_version))


def read_vm_name(client, vm_name=None):
    """``vm_name`` when given, else this VM's name from instance/compute/name: what an event's Resources name."""
    if vm_name and vm_name.strip():
        return vm_name.strip()
    return _text(client.get_text(VM_NAME_PATH, api_version=VM_NAME_API_VERSION), '/metadata/' + VM_NAME_PATH)
