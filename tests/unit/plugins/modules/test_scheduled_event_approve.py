# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.imds.azure.plugins.modules import scheduled_event_approve
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer, load_fixture
from ansible_collections.imds.azure.tests.unit.utils.module_runner import run_against

VM_NAME = Answer(status=200, body=b'vm-web-01', content_type='text/plain; charset=utf-8')
APPROVED = Answer(status=200, body=b'', content_type='')
MINE = 'd2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f6a'
OTHERS = 'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f'
STARTED = '5a3e8f2b-1c4d-4e6f-8a9b-0c1d2e3f4a5b'


def run(server, check_mode=False, **args):
    return run_against(server, scheduled_event_approve.main, check_mode=check_mode, **args)


def posts(server):
    return [json.loads(request['body'].decode('utf-8')) for request in server.requests if request['method'] == 'POST']


def test_only_this_vms_scheduled_event_is_approved_in_one_post(server):
    server.queue(Answer.from_fixture('se_200_group_other_vms'), VM_NAME, APPROVED)
    failed, result = run(server, event_ids=[MINE.upper(), OTHERS, 'no-such-event'])
    assert not failed
    assert result['changed'] is True
    assert (result['approved'], result['not_for_this_vm'], result['not_found'], result['already_started']) == \
        ([MINE], [OTHERS], ['no-such-event'], [])
    assert (result['incarnation'], result['vm_name']) == (5, 'vm-web-01')
    assert posts(server) == [{'StartRequests': [{'EventId': MINE}]}]
    assert server.requests[-1]['target'] == '/metadata/scheduledevents?api-version=2020-07-01'
    assert result['imds_requests'] == 3


def test_check_mode_reports_the_approval_and_sends_no_post(server):
    server.queue(Answer.from_fixture('se_200_group_other_vms'), VM_NAME)
    failed, result = run(server, check_mode=True, event_ids=[MINE])
    assert not failed
    assert result['changed'] is True and result['approved'] == [MINE]
    assert posts(server) == []


def test_any_vm_approves_the_group_event_without_reading_the_vm_name(server):
    server.queue(Answer.from_fixture('se_200_group_other_vms'), APPROVED)
    failed, result = run(server, event_ids=[OTHERS, MINE], only_this_vm=False)
    assert not failed
    assert result['approved'] == [OTHERS, MINE] and result['vm_name'] is None
    assert [request['method'] for request in server.requests] == ['GET', 'POST']
    assert posts(server) == [{'StartRequests': [{'EventId': OTHERS}, {'EventId': MINE}]}]


@pytest.mark.parametrize('fixture, event_ids, key', [
    ('se_200_no_not_before', [STARTED], 'already_started'),
    ('se_200_empty', [MINE], 'not_found'),
    ('se_200_group_other_vms', [OTHERS], 'not_for_this_vm'),
])
def test_nothing_to_approve_is_reported_unchanged_and_sends_no_post(server, fixture, event_ids, key):
    server.queue(Answer.from_fixture(fixture), VM_NAME)
    failed, result = run(server, event_ids=event_ids)
    assert not failed
    assert result['changed'] is False and result['approved'] == []
    assert result[key] == event_ids
    assert posts(server) == []


def test_empty_list_approves_nothing(server):
    server.queue(Answer.from_fixture('se_200_documented'), VM_NAME)
    failed, result = run(server, event_ids=[])
    assert not failed and result['changed'] is False


def test_untrusted_document_approves_nothing(server):
    server.queue(Answer.from_fixture('se_200_bad_duplicate_ids'), VM_NAME, APPROVED)
    failed, result = run(server, event_ids=[load_fixture('se_200_bad_duplicate_ids')['body']['Events'][0]['EventId']])
    assert failed and result['error_code'] == 'invalid_metadata'
    assert posts(server) == []


def test_failed_vm_name_read_approves_nothing(server):
    server.queue(Answer.from_fixture('se_200_documented'), Answer.from_fixture('imds_500_internal'))
    failed, result = run(server, event_ids=['f020ba2e-3bc0-4c40-a10b-86575a9eabd5'])
    assert failed and result['error_code'] == 'server_error'
    assert posts(server) == []


def test_refused_approval_fails_with_its_status(server):
    server.queue(Answer.from_fixture('se_200_documented'), VM_NAME,
                 Answer(status=400, body={'error': 'Bad request. Malformed StartRequests.'}))
    failed, result = run(server, event_ids=['f020ba2e-3bc0-4c40-a10b-86575a9eabd5'])
    assert failed
    assert (result['error_code'], result['status']) == ('bad_request', 400)
    assert 'Malformed StartRequests' in result['msg']
    assert result['imds_requests'] == 3


def test_event_ids_are_required_with_an_error_code(server):
    failed, result = run(server)
    assert failed and result['error_code'] == 'invalid_option'
    assert server.requests == []
