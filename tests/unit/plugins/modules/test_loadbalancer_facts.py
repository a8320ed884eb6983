# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.plugins.modules import loadbalancer_facts
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer
from ansible_collections.imds.azure.tests.unit.utils.module_runner import run_against, run_module


def run(server, check_mode=False, **args):
    return run_against(server, loadbalancer_facts.main, check_mode=check_mode, **args)


@pytest.mark.parametrize('check_mode', [False, True])
def test_documented_answer_becomes_facts(server, check_mode):
    server.queue(Answer.from_fixture('lb_200_documented'))
    failed, result = run(server, check_mode=check_mode)
    assert not failed
    assert result['changed'] is False
    facts = result['ansible_facts']['azure_loadbalancer']
    assert facts['available'] is True
    assert facts['frontend_ips'] == ['50.0.0.1', '51.0.0.1', '2603:10e1:100:2::1:1']
    assert facts['api_version'] == '2020-10-01'
    assert server.requests[0]['target'] == '/metadata/loadbalancer?api-version=2020-10-01'


def test_api_version_option_is_sent(server):
    server.queue(Answer.from_fixture('lb_200_documented'))
    failed, result = run(server, api_version='2025-04-07')
    assert not failed
    assert result['ansible_facts']['azure_loadbalancer']['api_version'] == '2025-04-07'
    assert server.requests[0]['target'].endswith('api-version=2025-04-07')


def test_no_standard_loadbalancer_is_not_a_failure(server):
    server.queue(Answer.from_fixture('lb_404_no_metadata'))
    failed, result = run(server)
    facts = result['ansible_facts']['azure_loadbalancer']
    assert not failed
    assert (facts['available'], facts['reason']) == (False, 'no_loadbalancer')
    assert 'Standard SKU' in facts['message']
    assert facts['inbound_rules'] == []


def test_not_azure_by_dmi_is_not_a_failure(tmp_path, monkeypatch, server):
    tag = tmp_path / 'tag'
    tag.write_text('Default string')
    monkeypatch.setattr(_imds, 'DMI_CHASSIS_ASSET_TAG_PATH', str(tag))
    monkeypatch.setattr(_imds, 'DEFAULT_ENDPOINT', server.endpoint)
    failed, result = run_module(loadbalancer_facts.main, {})
    facts = result['ansible_facts']['azure_loadbalancer']
    assert not failed
    assert (facts['available'], facts['reason']) == (False, 'not_azure')
    assert server.requests == []


@pytest.mark.parametrize('answer, code', [
    (Answer.from_fixture('lb_503_unavailable'), 'unavailable'),
    (Answer.from_fixture('lb_404_api_not_found'), 'not_found'),
    (Answer(status=200, body=b'{"loadbalancer": {"inboundRules": [{"frontendIpAddress": "1.2.3.4; evil"}]}}'),
     'invalid_metadata'),
    (Answer(status=200, body=b'<html></html>', content_type='text/html'), 'bad_content_type'),
])
def test_failures_return_a_message_and_no_facts(server, answer, code):
    server.queue(answer)
    failed, result = run(server)
    assert failed
    assert 'ansible_facts' not in result
    assert result['error_code'] == code
    assert result['msg']


@pytest.mark.parametrize('args, fragment', [
    (dict(endpoint='https://127.0.0.1'), 'plain http://'),
    (dict(api_version='latest'), 'YYYY-MM-DD'),
    (dict(timeout=0), 'timeout must be'),
])
def test_bad_options_fail_cleanly(server, args, fragment):
    failed, result = run(server, **args)
    assert failed
    assert fragment in result['msg']
    assert server.requests == []


@pytest.mark.parametrize('body', [b'{}', b'{"loadbalancer": null}', b'{"loadbalancer": {}}'])
def test_answer_that_says_nothing_fails_as_an_empty_answer(server, body):
    server.queue(Answer(status=200, body=body))
    failed, result = run(server)
    assert failed
    assert result['error_code'] == 'empty_answer'
    assert 'ansible_facts' not in result
    assert 'says nothing' in result['msg']


def test_answer_with_empty_lists_is_available_with_empty_facts(server):
    lists = {'publicIpAddresses': [], 'inboundRules': [], 'outboundRules': []}
    server.queue(Answer(status=200, body={'loadbalancer': lists}))
    failed, result = run(server)
    assert not failed
    facts = result['ansible_facts']['azure_loadbalancer']
    assert facts['available'] is True and facts['inbound_rules'] == [] and facts['tunnel_interfaces'] == []


def test_gateway_answer_reports_its_tunnel_interfaces(server):
    server.queue(Answer.from_fixture('lb_200_gateway_capitalised'))
    failed, result = run(server)
    assert not failed
    tunnels = result['ansible_facts']['azure_loadbalancer']['tunnel_interfaces']
    described = [(t['type'], t['protocol'], t['identifier']) for t in tunnels]
    assert described == [('internal', 'vxlan', 800), ('external', 'vxlan', 801)]


def test_cost_of_the_read_is_reported_on_success(server):
    server.queue(Answer.from_fixture('lb_503_unavailable'), Answer.from_fixture('lb_200_documented'))
    failed, result = run(server, retry_timeout=10)
    assert not failed
    assert result['imds_requests'] == 2
    assert isinstance(result['imds_seconds'], float) and result['imds_seconds'] > 0


def test_cost_of_the_read_is_reported_on_failure(server):
    server.queue(Answer.from_fixture('lb_404_api_not_found'))
    failed, result = run(server)
    assert failed
    assert (result['imds_requests'], result['error_code']) == (1, 'not_found')
    assert isinstance(result['imds_seconds'], float)


@pytest.mark.parametrize('args', [dict(timeout='nan'), dict(timeout='inf'), dict(timeout=1e308),
                                  dict(retry_timeout='nan'), dict(retry_timeout='inf'), dict(retry_timeout=-1)])
def test_non_finite_or_absurd_durations_fail_before_any_request(server, args):
    failed, result = run(server, **args)
    assert failed
    assert result['error_code'] == 'invalid_option'
    assert (result['imds_requests'], result['imds_seconds']) == (0, 0.0)
    assert server.requests == []


def test_unexpected_exception_still_fails_with_an_error_code(server, monkeypatch):
    def broken(document, api_version):
        raise KeyError('something nobody foresaw')
    server.queue(Answer.from_fixture('lb_200_documented'))
    from ansible_collections.imds.azure.plugins.module_utils import _loadbalancer
    monkeypatch.setattr(_loadbalancer, 'normalize_loadbalancer', broken)
    failed, result = run(server)
    assert failed
    assert result['error_code'] == 'internal_error'
    assert 'KeyError' in result['msg'] and 'something nobody foresaw' in result['msg']
    assert result['imds_requests'] == 1


def test_endpoint_with_credentials_is_refused_without_echoing_them(server):
    failed, result = run(server, endpoint='http://user:hunter2@127.0.0.1:%d' % server.port)
    assert failed
    assert result['error_code'] == 'invalid_option'
    assert 'hunter2' not in result['msg']


@pytest.mark.parametrize('args', [dict(timeout='soon'), dict(retry_timeout=[1]), dict(no_such_option=1)])
def test_options_ansible_itself_refuses_still_have_an_error_code(server, args):
    failed, result = run(server, **args)
    assert failed
    assert result['error_code'] == 'invalid_option'
    assert (result['imds_requests'], result['imds_seconds']) == (0, 0.0)
    assert server.requests == []
