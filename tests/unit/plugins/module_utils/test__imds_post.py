# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ImdsClient.post_json: the one POST (approving scheduled events), sent to no other path, under every rule of GET."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsClient, ImdsError, NotAzureError
from ansible_collections.imds.azure.tests.unit.utils.imds_client import FakeTime, client_for
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer, ScriptedServer

EVENTS = 'scheduledevents'
API = '2020-07-01'
APPROVAL = {'StartRequests': [{'EventId': 'f020ba2e-3bc0-4c40-a10b-86575a9eabd5'}]}
EMPTY_200 = Answer(status=200, body=b'', content_type='')


def test_post_carries_the_metadata_header_and_the_json_body(server):
    server.queue(EMPTY_200)
    client = client_for(server)
    assert client.post_json(EVENTS, APPROVAL, API) is None
    request = server.requests[0]
    assert (request['method'], request['target']) == ('POST', '/metadata/scheduledevents?api-version=2020-07-01')
    assert request['headers']['metadata'] == 'true'
    assert request['headers']['content-type'] == 'application/json'
    assert 'x-forwarded-for' not in request['headers']
    assert json.loads(request['body'].decode('utf-8')) == APPROVAL
    assert client.usage()['imds_requests'] == 1


def test_a_json_answer_is_returned_parsed(server):
    server.queue(Answer(status=200, body={'accepted': True}))
    assert client_for(server).post_json('/metadata/scheduledevents/', APPROVAL, API) == {'accepted': True}


@pytest.mark.parametrize('path', ['loadbalancer', 'instance', 'instance/compute', 'identity/oauth2/token', 'versions',
                                  'scheduledevents/extra', 'ScheduledEvents', 'scheduledevents2', 'metadata/instance',
                                  'attested/document'])
def test_no_other_path_can_be_posted_to_and_nothing_is_sent(server, monkeypatch, path):
    def no_socket(*_args, **_kwargs):
        raise AssertionError('a socket was opened for a refused POST')

    monkeypatch.setattr(_imds.socket, 'socket', no_socket)
    client = client_for(server)
    with pytest.raises(ImdsError) as raised:
        client.post_json(path, APPROVAL, API)
    assert raised.value.code == 'post_not_allowed'
    assert 'nothing was sent' in raised.value.message
    assert server.requests == []
    assert client.usage()['imds_requests'] == 0


@pytest.mark.parametrize('path', ['scheduledevents/../loadbalancer', 'scheduledevents?x=1', ''])
def test_a_path_that_is_not_a_path_is_refused_before_sending(server, path):
    with pytest.raises(ImdsError) as raised:
        client_for(server).post_json(path, APPROVAL, API)
    assert raised.value.code == 'invalid_option'
    assert server.requests == []


def test_a_document_larger_than_the_body_limit_is_not_sent(server):
    huge = {'StartRequests': [{'EventId': 'x' * 100}] * (_imds.MAX_BODY_BYTES // 100)}
    with pytest.raises(ImdsError) as raised:
        client_for(server).post_json(EVENTS, huge, API)
    assert raised.value.code == 'invalid_option'
    assert server.requests == []


def test_transient_answers_are_retried_with_the_same_body(server):
    server.queue(Answer.from_fixture('lb_429_too_many'), Answer.from_fixture('imds_410_gone'), Answer(behaviour='reset'),
                 EMPTY_200)
    client = client_for(server, FakeTime())
    assert client.post_json(EVENTS, APPROVAL, API) is None
    assert [request['method'] for request in server.requests] == ['POST'] * 4
    assert len(set(request['body'] for request in server.requests)) == 1
    assert client.usage()['imds_requests'] == 4


def test_a_rejected_approval_fails_at_once_with_the_imds_message(server):
    server.queue(Answer(status=400, body={'error': 'Bad request. The StartRequests body is malformed.'}))
    client = client_for(server, FakeTime())
    with pytest.raises(ImdsError) as raised:
        client.post_json(EVENTS, APPROVAL, API)
    assert (raised.value.code, raised.value.status) == ('bad_request', 400)
    assert 'StartRequests body is malformed' in raised.value.message
    assert len(server.requests) == 1


def test_proxy_variables_are_ignored_and_redirects_not_followed(server, monkeypatch):
    trap = ScriptedServer()
    try:
        trap.queue(EMPTY_200)
        for name in ('http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'):
            monkeypatch.setenv(name, trap.endpoint)
        monkeypatch.delenv('no_proxy', raising=False)
        monkeypatch.delenv('NO_PROXY', raising=False)
        server.queue(Answer(status=307, headers={'Location': trap.endpoint + '/metadata/scheduledevents'}))
        with pytest.raises(ImdsError) as raised:
            client_for(server).post_json(EVENTS, APPROVAL, API)
        assert raised.value.code == 'redirect'
        assert trap.requests == []
        assert len(server.requests) == 1
    finally:
        trap.stop()


@pytest.mark.parametrize('answer, code', [
    (Answer(status=200, body=b'{}', declared_length=_imds.MAX_BODY_BYTES + 1), 'too_large'),
    (Answer(status=200, body=b'<html>Welcome</html>', content_type='text/html'), 'bad_content_type'),
    (Answer(status=200, body=b'{"accepted": '), 'invalid_json'),
    (Answer(status=204, body=b''), 'http_204'),
])
def test_an_answer_that_is_not_imds_is_an_error(server, answer, code):
    server.queue(answer)
    with pytest.raises(ImdsError) as raised:
        client_for(server).post_json(EVENTS, APPROVAL, API)
    assert raised.value.code == code


def test_a_post_that_gets_no_answer_stops_at_the_timeout(server):
    server.queue(Answer(behaviour='hang'))
    with pytest.raises(ImdsError) as raised:
        client_for(server, timeout=0.5).post_json(EVENTS, APPROVAL, API)
    assert raised.value.code == 'timeout'
    assert len(server.requests) == 1


def test_posts_and_gets_share_the_pacing(server):
    server.queue(EMPTY_200)
    client = client_for(server)
    client.post_json(EVENTS, APPROVAL, API)
    client.post_json(EVENTS, APPROVAL, API)
    times = [request['time'] for request in server.requests]
    assert times[1] - times[0] >= _imds.MIN_REQUEST_INTERVAL - 0.05


def test_dmi_that_is_not_azure_sends_no_post(tmp_path, server, monkeypatch):
    tag = tmp_path / 'chassis_asset_tag'
    tag.write_text('No Asset Tag\n')
    monkeypatch.setattr(_imds, 'DEFAULT_ENDPOINT', server.endpoint)
    with pytest.raises(NotAzureError):
        ImdsClient(dmi_path=str(tag)).post_json(EVENTS, APPROVAL, API)
    assert server.requests == []
