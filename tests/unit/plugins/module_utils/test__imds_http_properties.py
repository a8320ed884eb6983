# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Property test of the HTTP layer: whatever a server on the endpoint sends, the client returns a result or
raises ImdsError (with a known code and a capped message), never any other exception."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsError
from ansible_collections.imds.azure.plugins.module_utils._imds_failures import ERROR_CODES
from ansible_collections.imds.azure.tests.unit.utils.imds_client import FakeTime, client_for
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer, ScriptedServer, load_fixture

DOCUMENTED = json.dumps(load_fixture('lb_200_documented')['body']).encode()

statuses = st.sampled_from([100, 101, 102, 103, 200, 204, 301, 302, 304, 400, 404, 405, 410, 429, 500, 503]) | \
    st.integers(0, 1200)
versions = st.sampled_from(['HTTP/1.1', 'HTTP/1.0', 'HTTP/2', 'HTTP/0.9', 'ICY', 'http/1.1', ''])
valid_status_lines = st.builds(lambda status, reason: ('HTTP/1.1 %d %s' % (status, reason)).encode('utf-8'),
                               statuses, st.sampled_from(['OK', 'Whatever', '']))
odd_status_lines = st.builds(lambda version, status, reason: ('%s %s %s' % (version, status, reason)).encode('utf-8'),
                             versions, statuses | st.text(max_size=4), st.text(max_size=12)) | st.binary(max_size=40)
# Mostly well-formed status lines, so that the headers and bodies behind them get read too.
status_lines = st.one_of(valid_status_lines, valid_status_lines, valid_status_lines, odd_status_lines)

header_names = st.sampled_from(['Content-Length', 'Content-Type', 'Transfer-Encoding', 'Content-Encoding',
                                'Retry-After', 'Connection', 'content-length', 'X-Any']) | st.text(max_size=10)
header_values = st.sampled_from([
    '0', '2', '40', '+40', '-1', '1_0', '\u0664\u0660', '9' * 5000, 'chunked', 'gzip', 'identity', 'close',
    'application/json', 'application/json; charset=utf-8', 'application/json; charset=latin-1',
    'application/json; charset=nope', 'text/plain; charset=utf-16', 'text/html', 'x' * 70000, 'nan', 'inf',
    '1e400', 'Wed, 21 Oct 2026 07:28:00 GMT',
]) | st.text(max_size=30)
content_types = st.sampled_from(['Content-Type: application/json; charset=utf-8', 'Content-Type: text/plain',
                                 'Content-Type: application/json']).map(lambda line: line.encode('utf-8'))
header_lines = st.lists(content_types | st.tuples(header_names, header_values).map(
    lambda item: ('%s: %s' % item).encode('utf-8')) | st.binary(max_size=30), max_size=8)

bodies = st.sampled_from([DOCUMENTED, DOCUMENTED[:40], b'{}', b'{"loadbalancer": null}', b'[' * 5000 + b']' * 5000,
                          b'{"error": ' + b'[' * 5000 + b']' * 5000 + b'}', b'5\r\nhello\r\n0\r\n\r\n',
                          b'zz\r\nhello\r\n', b'f' * 30 + b'\r\n', b'\xff\xfe\x00']) | st.binary(max_size=300)


@st.composite
def answers(draw):
    parts = []
    for _informational in range(draw(st.integers(0, 2))):
        parts.append(b'HTTP/1.1 %d Info\r\n' % draw(st.integers(100, 199)) + b''.join(
            line + b'\r\n' for line in draw(header_lines)) + b'\r\n')
    parts.append(draw(status_lines) + b'\r\n')
    parts.extend(line + b'\r\n' for line in draw(header_lines))
    if draw(st.integers(0, 4)):
        parts.append(b'\r\n')
    parts.append(draw(bodies))
    return b''.join(parts)


@pytest.fixture(scope='module')
def shared_server():
    scripted = ScriptedServer()
    yield scripted
    scripted.stop()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=answers(), fmt=st.sampled_from(['json', 'text']))
def test_any_answer_gives_a_result_or_an_imds_error(shared_server, raw, fmt):
    with shared_server.lock:
        shared_server.answers[:] = [Answer(raw=raw)]
    client = client_for(shared_server, FakeTime(), timeout=2, retry_timeout=1)
    try:
        if fmt == 'json':
            client.get_json('loadbalancer', '2020-10-01')
        else:
            assert isinstance(client.get_text('instance/compute/name', '2021-02-01'), str)
    except ImdsError as exc:
        assert exc.code in ERROR_CODES or exc.code.startswith('http_'), exc.code
        assert exc.message and len(exc.message) < 1200, exc.message
    assert client.attempts >= 1
