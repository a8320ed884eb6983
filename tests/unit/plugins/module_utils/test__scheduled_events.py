# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The scheduled events document normalised, the events of one VM, and what an approval sends."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import calendar
import copy

import pytest

from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._scheduled_events import (
    event_key,
    events_for_vm,
    normalize_scheduled_events,
    parse_not_before,
    plan_approval,
    start_requests,
)
from ansible_collections.imds.azure.tests.unit.utils.imds_server import fixture_names, load_fixture

DOCUMENTED_ID = 'f020ba2e-3bc0-4c40-a10b-86575a9eabd5'


def body(name):
    return copy.deepcopy(load_fixture(name)['body'])


def normalized(name):
    return normalize_scheduled_events(body(name))


def test_documented_sample_is_normalised_with_every_key():
    assert normalized('se_200_documented') == {'incarnation': 2, 'events': [{
        'id': DOCUMENTED_ID,
        'type': 'Reboot',
        'status': 'Scheduled',
        'resource_type': 'VirtualMachine',
        'resources': ['vm-web-01'],
        'source': 'User',
        'description': 'Virtual machine is going to be restarted as requested by authorized user.',
        'duration_seconds': 15,
        'not_before': '2021-07-22T04:50:17Z',
        'not_before_epoch': calendar.timegm((2021, 7, 22, 4, 50, 17)),
    }]}


def test_empty_events_is_the_normal_state():
    assert normalized('se_200_empty') == {'incarnation': 1, 'events': []}
    assert normalize_scheduled_events({'DocumentIncarnation': 7, 'Events': None}) == {'incarnation': 7, 'events': []}


def test_empty_not_before_is_none():
    event = normalized('se_200_no_not_before')['events'][0]
    assert (event['not_before'], event['not_before_epoch']) == (None, None)
    assert (event['status'], event['type'], event['duration_seconds']) == ('Started', 'Freeze', 9)


def test_unknown_duration_is_none():
    event = normalized('se_200_unknown_duration')['events'][0]
    assert event['duration_seconds'] is None
    assert event['not_before'] == '2021-07-23T10:00:00Z'


def test_group_event_for_other_vms_is_reported_but_not_for_this_vm():
    events = normalized('se_200_group_other_vms')['events']
    assert [event['resources'] for event in events] == [['vm-web-02', 'vm-web-03'], ['VM-WEB-01', 'vm-web-04']]
    # Names are matched without regard to case: the second event names this VM in capitals.
    assert [event['id'] for event in events_for_vm(events, 'vm-web-01')] == ['d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f6a']
    assert [event['id'] for event in events_for_vm(events, 'vm-web-03')] == ['c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f']
    assert events_for_vm(events, 'vm-web-09') == []
    assert events_for_vm(events, '') == [] and events_for_vm(events, None) == []


def test_oldest_api_version_shape_has_defaults_for_the_later_keys():
    event = normalized('se_200_api_2017')['events'][0]
    assert (event['source'], event['description'], event['duration_seconds']) == ('', '', None)
    assert event['not_before_epoch'] == calendar.timegm((2016, 9, 19, 18, 29, 47))


def test_other_letter_cases_and_extra_keys_are_accepted_with_azure_spelling():
    document = normalized('se_200_case_variants')
    event = document['events'][0]
    assert document['incarnation'] == 6
    assert (event['type'], event['status'], event['resource_type'], event['source']) == \
        ('Preempt', 'Scheduled', 'VirtualMachine', 'Platform')
    assert event['duration_seconds'] == 0
    assert 'priority' not in event


def test_an_event_type_azure_adds_later_is_kept_as_written():
    document = body('se_200_documented')
    document['Events'][0]['EventType'] = 'LiveMigration'
    assert normalize_scheduled_events(document)['events'][0]['type'] == 'LiveMigration'


def test_identical_repeated_events_are_reported_once():
    document = body('se_200_documented')
    document['Events'].append(copy.deepcopy(document['Events'][0]))
    assert len(normalize_scheduled_events(document)['events']) == 1


@pytest.mark.parametrize('fixture', fixture_names('se_200_bad_'))
def test_odd_shapes_in_fixtures_fail_with_invalid_metadata(fixture):
    with pytest.raises(ImdsError) as raised:
        normalized(fixture)
    assert raised.value.code == 'invalid_metadata'
    assert len(raised.value.message) < 400


def _event(**changes):
    event = body('se_200_documented')['Events'][0]
    event.update(changes)
    return {'DocumentIncarnation': 1, 'Events': [event]}


@pytest.mark.parametrize('document, field', [
    (None, 'response'),
    ([], 'response'),
    ('{"Events": []}', 'response'),
    ({'DocumentIncarnation': 1}, 'Events'),
    ({'DocumentIncarnation': True, 'Events': []}, 'DocumentIncarnation'),
    ({'DocumentIncarnation': -1, 'Events': []}, 'DocumentIncarnation'),
    ({'DocumentIncarnation': 1.5, 'Events': []}, 'DocumentIncarnation'),
    ({'DocumentIncarnation': '9' * 5000, 'Events': []}, 'DocumentIncarnation'),
    ({'DocumentIncarnation': 1, 'documentIncarnation': 2, 'Events': []}, 'same key'),
    ({'DocumentIncarnation': 1, 'Events': 'none'}, 'Events'),
    ({'DocumentIncarnation': 1, 'Events': [None]}, 'Events[0]'),
    ({'DocumentIncarnation': 1, 'Events': [['EventId']]}, 'Events[0]'),
    (_event(EventId=None), 'EventId'),
    (_event(EventId=''), 'EventId'),
    (_event(EventId=7), 'EventId'),
    (_event(EventId='a\x00b'), 'EventId'),
    (_event(EventId='x' * 300), 'EventId'),
    (_event(EventType=['Reboot']), 'EventType'),
    (_event(EventStatus=None), 'EventStatus'),
    (_event(ResourceType={}), 'ResourceType'),
    (_event(Resources=None), 'Resources'),
    (_event(Resources=[None]), 'Resources[0]'),
    (_event(Resources=['vm\nweb']), 'Resources[0]'),
    (_event(NotBefore='tomorrow'), 'NotBefore'),
    (_event(NotBefore='Thu, 22 Jul 2021 04:50:17 +0200'), 'NotBefore'),
    (_event(NotBefore='Thu, 31 Feb 2021 04:50:17 GMT'), 'NotBefore'),
    (_event(NotBefore='Thu, 22 Jul 2021 24:00:00 GMT'), 'NotBefore'),
    (_event(NotBefore='Thu, 22 Jul 2021 04:50 GMT'), 'NotBefore'),
    (_event(NotBefore='Thu, 22 Jul 2021 04:50:17 GMT' + ' later' * 20), 'NotBefore'),
    (_event(NotBefore=1626929417), 'NotBefore'),
    (_event(DurationInSeconds=-2), 'DurationInSeconds'),
    (_event(DurationInSeconds=True), 'DurationInSeconds'),
    (_event(DurationInSeconds='five'), 'DurationInSeconds'),
    (_event(DurationInSeconds=2 ** 80), 'DurationInSeconds'),
    (_event(Description=['text']), 'Description'),
    (_event(EventSource=5), 'EventSource'),
])
def test_shapes_that_cannot_be_trusted_name_the_field(document, field):
    with pytest.raises(ImdsError) as raised:
        normalize_scheduled_events(document)
    assert raised.value.code == 'invalid_metadata'
    assert field in raised.value.message
    assert len(raised.value.message) < 400


@pytest.mark.parametrize('text, expected', [
    ('Thu, 22 Jul 2021 04:50:17 GMT', ('2021-07-22T04:50:17Z', 1626929417)),
    ('22 Jul 2021 04:50:17 GMT', ('2021-07-22T04:50:17Z', 1626929417)),
    ('Thursday, 22 July 2021 04:50:17 UTC', ('2021-07-22T04:50:17Z', 1626929417)),
    ('Tue, 29 Feb 2028 23:59:59 GMT', ('2028-02-29T23:59:59Z', calendar.timegm((2028, 2, 29, 23, 59, 59)))),
    ('Thu, 01 Jan 1970 00:00:00 GMT', ('1970-01-01T00:00:00Z', 0)),
    ('', (None, None)),
    ('   ', (None, None)),
    (None, (None, None)),
])
def test_not_before_parsing(text, expected):
    assert parse_not_before(text) == expected


def test_event_key_is_id_and_status():
    event = normalized('se_200_documented')['events'][0]
    assert event_key(event) == (DOCUMENTED_ID, 'Scheduled')


def test_start_requests_is_the_documented_body():
    assert start_requests(['a', 'b']) == {'StartRequests': [{'EventId': 'a'}, {'EventId': 'b'}]}


def _events(*specs):
    return [{'id': event_id, 'status': status, 'resources': resources} for event_id, status, resources in specs]


EVENTS = _events(('mine', 'Scheduled', ['vm-web-01']), ('mine-started', 'Started', ['vm-web-01']),
                 ('other', 'Scheduled', ['vm-web-02']), ('Group', 'Scheduled', ['vm-web-02', 'VM-Web-01']))


def test_approval_plan_sorts_every_requested_id():
    plan = plan_approval(EVENTS, ['mine', 'mine-started', 'other', 'gone', 'group', 'mine'], 'vm-web-01')
    assert plan == {'approved': ['mine', 'Group'], 'already_started': ['mine-started'], 'not_found': ['gone'],
                    'not_for_this_vm': ['other']}


def test_approval_plan_for_any_vm_approves_other_vms_events():
    plan = plan_approval(EVENTS, ['other', 'mine-started'], None, only_this_vm=False)
    assert plan == {'approved': ['other'], 'already_started': ['mine-started'], 'not_found': [], 'not_for_this_vm': []}


def test_approval_plan_without_events_approves_nothing():
    assert plan_approval([], ['mine'], 'vm-web-01')['approved'] == []
