# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The HTTP exchange of a request (_imds_http.py), through the client: what goes on the wire, and the body and time limits."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsError
from ansible_collections.imds.azure.tests.unit.utils.imds_client import client_for
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer, ScriptedServer, load_fixture

LB = 'loadbalancer'
API = '2020-10-01'


def test_request_is_a_plain_get_with_the_metadata_header(server):
    server.queue(Answer.from_fixture('lb_200_documented'))
    client_for(server).get_json(LB, API)
    request = server.requests[0]
    assert request['method'] == 'GET'
    assert request['target'] == '/metadata/loadbalancer?api-version=2020-10-01'
    assert request['headers']['metadata'] == 'true'
    assert 'x-forwarded-for' not in request['headers']
    assert 'proxy-authorization' not in request['headers']


def test_proxy_variables_are_ignored(server, monkeypatch):
    trap = ScriptedServer()
    try:
        trap.queue(Answer(status=200, body={'trapped': True}))
        for name in ('http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'):
            monkeypatch.setenv(name, trap.endpoint)
        monkeypatch.delenv('no_proxy', raising=False)
        monkeypatch.delenv('NO_PROXY', raising=False)
        server.queue(Answer.from_fixture('lb_200_documented'))
        assert 'loadbalancer' in client_for(server).get_json(LB, API)
        assert trap.requests == []
        assert len(server.requests) == 1
    finally:
        trap.stop()


def test_redirect_is_not_followed(server):
    target = ScriptedServer()
    try:
        target.queue(Answer.from_fixture('lb_200_documented'))
        server.queue(Answer(status=302, body=b'', headers={'Location': target.endpoint + '/metadata/loadbalancer'}))
        with pytest.raises(ImdsError) as raised:
            client_for(server).get_json(LB, API)
        assert raised.value.code == 'redirect'
        assert target.requests == []
    finally:
        target.stop()


def test_declared_oversize_body_is_refused_before_reading(server):
    server.queue(Answer(status=200, body=b'{}', declared_length=_imds.MAX_BODY_BYTES + 1))
    with pytest.raises(ImdsError) as raised:
        client_for(server).get_json(LB, API)
    assert raised.value.code == 'too_large'


def test_undeclared_oversize_body_is_cut_off(server):
    server.queue(Answer(status=200, body=b'[' + b'0,' * _imds.MAX_BODY_BYTES + b'0]', behaviour='no_length'))
    with pytest.raises(ImdsError) as raised:
        client_for(server).get_json(LB, API)
    assert raised.value.code == 'too_large'


def test_truncated_body_is_an_error(server):
    body = json.dumps(load_fixture('lb_200_documented')['body']).encode()
    server.queue(Answer(status=200, body=body[:40], declared_length=len(body)))
    with pytest.raises(ImdsError) as raised:
        client_for(server).get_json(LB, API)
    assert raised.value.code == 'truncated'


def test_server_that_never_answers_times_out(server):
    server.queue(Answer(behaviour='hang'))
    with pytest.raises(ImdsError) as raised:
        client_for(server, timeout=0.5).get_json(LB, API)
    assert raised.value.code == 'timeout'
    assert len(server.requests) == 1


def test_slowly_dripping_body_times_out_as_a_whole(server):
    body = json.dumps(load_fixture('lb_200_documented')['body']).encode()
    server.queue(Answer(status=200, body=body, drip_interval=0.05))
    with pytest.raises(ImdsError) as raised:
        client_for(server, timeout=0.5).get_json(LB, API)
    # Each byte arrives well within the timeout; only the whole-request deadline stops it.
    assert raised.value.code == 'timeout'


def test_headers_dripping_byte_by_byte_cannot_outlast_the_timeout(server):
    server.queue(Answer(status=200, body=b'{}', header_drip_interval=0.3))
    client = client_for(server, timeout=1)
    with pytest.raises(ImdsError) as raised:
        client.get_json(LB, API)
    assert raised.value.code == 'timeout'
    assert server.header_bytes_sent < 10, 'the client stopped reading at its deadline'
