# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.imds.azure.plugins.modules import scheduled_events_info
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer
from ansible_collections.imds.azure.tests.unit.utils.module_runner import run_against

VM_NAME = Answer(status=200, body=b'vm-web-01', content_type='text/plain; charset=utf-8')


def run(server, check_mode=False, **args):
    return run_against(server, scheduled_events_info.main, check_mode=check_mode, **args)


@pytest.mark.parametrize('check_mode', [False, True])
def test_events_and_this_vms_share_are_returned(server, check_mode):
    server.queue(Answer.from_fixture('se_200_group_other_vms'), VM_NAME)
    failed, result = run(server, check_mode=check_mode)
    assert not failed and result['changed'] is False
    events = result['scheduled_events']
    assert (events['incarnation'], events['vm_name']) == (5, 'vm-web-01')
    assert [event['id'] for event in events['events']] == [
        'c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f', 'd2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f6a']
    assert [event['id'] for event in events['for_this_vm']] == ['d2e3f4a5-b6c7-4d8e-9f0a-1b2c3d4e5f6a']
    assert [request['target'] for request in server.requests] == [
        '/metadata/scheduledevents?api-version=2020-07-01',
        '/metadata/instance/compute/name?api-version=2021-02-01&format=text']
    assert all(request['method'] == 'GET' for request in server.requests)
    assert result['imds_requests'] == 2


def test_given_vm_name_saves_the_second_request(server):
    server.queue(Answer.from_fixture('se_200_group_other_vms'))
    failed, result = run(server, vm_name='VM-WEB-03', api_version='2019-08-01')
    assert not failed
    assert [event['id'] for event in result['scheduled_events']['for_this_vm']] == ['c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f']
    assert [request['target'] for request in server.requests] == ['/metadata/scheduledevents?api-version=2019-08-01']
    assert result['imds_requests'] == 1


def test_no_events_is_success_with_empty_lists(server):
    server.queue(Answer.from_fixture('se_200_empty'), VM_NAME)
    failed, result = run(server)
    assert not failed
    assert result['scheduled_events'] == {'incarnation': 1, 'events': [], 'for_this_vm': [], 'vm_name': 'vm-web-01'}


@pytest.mark.parametrize('answers, code', [
    ([Answer.from_fixture('se_200_bad_not_before')], 'invalid_metadata'),
    ([Answer(status=200, body=b'[1, 2]')], 'invalid_metadata'),
    ([Answer.from_fixture('se_200_documented'), Answer(status=200, body=b'  ', content_type='text/plain')],
     'invalid_metadata'),
    ([Answer.from_fixture('imds_400_api_version')], 'bad_api_version'),
    ([Answer(behaviour='hang')], 'timeout'),
])
def test_failures_return_an_error_code_and_no_events(server, answers, code):
    server.queue(*answers)
    failed, result = run(server, timeout=0.5)
    assert failed
    assert result['error_code'] == code
    assert 'scheduled_events' not in result
    assert result['imds_requests'] >= 1


def test_default_timeout_allows_for_the_slow_first_call():
    spec = scheduled_events_info.scheduled_events_argument_spec()
    assert spec['timeout']['default'] == 150
    assert spec['api_version']['default'] == '2020-07-01'
