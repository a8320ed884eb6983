# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Property tests: whatever JSON IMDS sends for scheduled events, the normaliser gives events or a clean error."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import copy
import json
import time

from hypothesis import given, settings, strategies as st

from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._scheduled_events import (
    normalize_scheduled_events,
    parse_not_before,
)
from ansible_collections.imds.azure.tests.unit.utils.imds_server import load_fixture

KEY_NAMES = ['DocumentIncarnation', 'Events', 'EventId', 'EventStatus', 'EventType', 'ResourceType', 'Resources',
             'NotBefore', 'Description', 'EventSource', 'DurationInSeconds', 'events', 'event_id', 'NOTBEFORE']
json_scalars = (st.none() | st.booleans() | st.integers(-5, 2 ** 60) | st.floats(allow_nan=False) | st.text(max_size=12)
                | st.sampled_from(['Thu, 22 Jul 2021 04:50:17 GMT', '', 'Scheduled', 'Reboot', 'VirtualMachine', '-1']))
json_keys = st.sampled_from(KEY_NAMES) | st.text(max_size=6)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=6),
    max_leaves=30,
)
DOCUMENTED_EVENT = load_fixture('se_200_documented')['body']['Events'][0]


def _outcome(document):
    try:
        return normalize_scheduled_events(document)
    except ImdsError as exc:
        assert exc.code == 'invalid_metadata'
        assert len(exc.message) < 400
        return None


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_gives_events_or_invalid_metadata(document):
    result = _outcome(document)
    if result is not None:
        json.dumps(result)  # plain data only
        assert isinstance(result['incarnation'], int)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(DOCUMENTED_EVENT)), json_scalars, max_size=4))
def test_an_event_with_any_values_replaced_gives_an_event_or_invalid_metadata(changes):
    event = copy.deepcopy(DOCUMENTED_EVENT)
    event.update(changes)
    result = _outcome({'DocumentIncarnation': 3, 'Events': [event]})
    if result is not None:
        normalised = result['events'][0]
        assert isinstance(normalised['id'], str) and normalised['id']
        assert normalised['duration_seconds'] is None or normalised['duration_seconds'] >= 0
        assert all(isinstance(name, str) and name for name in normalised['resources'])


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 253402300799))
def test_not_before_round_trips_every_second_of_the_calendar(epoch):
    text = time.strftime('%a, %d %b %Y %H:%M:%S GMT', time.gmtime(epoch))
    iso, parsed = parse_not_before(text)
    assert parsed == epoch == calendar.timegm(time.strptime(iso, '%Y-%m-%dT%H:%M:%SZ'))
