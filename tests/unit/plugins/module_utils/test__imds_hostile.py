# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Answers no IMDS sends, from a scripted server: each ends in a result or a clean ImdsError with a capped message."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import gzip
import json
import socket
import time

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsClient, ImdsError
from ansible_collections.imds.azure.tests.unit.utils.imds_client import FakeTime, client_for
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer, load_fixture

LB = 'loadbalancer'
API = '2020-10-01'
DOCUMENTED = json.dumps(load_fixture('lb_200_documented')['body']).encode()


def raw(*lines, **kwargs):
    body = kwargs.get('body', b'')
    return Answer(raw=('\r\n'.join(lines) + '\r\n\r\n').encode('utf-8') + body)


def failure(server, answer, **client_options):
    server.queue(answer)
    with pytest.raises(ImdsError) as raised:
        client_for(server, **client_options).get_json(LB, API)
    return raised.value


# -- framing: what http.client decided is what counts --------------------------------

@pytest.mark.parametrize('length_header', ['Content-Length: +160', 'Content-Length: 160\r\nContent-Length: 160',
                                           'Content-Length: 1_60', 'Content-Length: 0160', 'Content-Length:\t160 '])
def test_body_shorter_than_any_form_of_declared_length_is_truncated(server, length_header):
    error = failure(server, raw('HTTP/1.1 200 OK', 'Content-Type: application/json', length_header,
                                body=DOCUMENTED[:40]))
    assert error.code == 'truncated'


def test_length_header_beyond_pythons_integer_limit_is_no_crash(server):
    # http.client cannot convert it, ignores it and reads to the end of the connection.
    server.queue(raw('HTTP/1.1 200 OK', 'Content-Type: application/json', 'Content-Length: ' + '9' * 5000,
                     body=DOCUMENTED))
    assert 'loadbalancer' in client_for(server).get_json(LB, API)


def test_retry_after_beyond_pythons_integer_limit_gives_up_at_once(server):
    fake_time = FakeTime()
    error = failure(server, Answer.from_fixture('lb_503_unavailable', headers={'Retry-After': '9' * 5000}),
                    fake_time=fake_time)
    assert error.code == 'unavailable'
    assert len(server.requests) == 1


@pytest.mark.parametrize('informational', [['102 Processing'], ['103 Early Hints', 'Link: </x>; rel=preload'],
                                           ['100 Continue'], ['199 Whatever']])
def test_informational_answers_are_skipped(server, informational):
    status, headers = informational[0], informational[1:]
    final = ['', 'HTTP/1.1 200 OK', 'Content-Type: application/json', 'Content-Length: %d' % len(DOCUMENTED)]
    lines = ['HTTP/1.1 ' + status] + headers + final
    server.queue(raw(*lines, body=DOCUMENTED))
    assert client_for(server).get_json(LB, API) == load_fixture('lb_200_documented')['body']


def test_endless_informational_answers_are_not_http_from_imds(server):
    lines = ['HTTP/1.1 102 Processing', ''] * 20 + ['HTTP/1.1 200 OK', 'Content-Length: 2']
    assert failure(server, raw(*lines, body=b'{}')).code == 'bad_http'


def test_switching_protocols_is_not_skipped(server):
    error = failure(server, raw('HTTP/1.1 101 Switching Protocols', 'Upgrade: websocket', 'Content-Length: 0'))
    assert error.code == 'http_101'


# -- error bodies ------------------------------------------------------------------------

def test_deeply_nested_json_in_an_error_body_is_a_clean_failure(server):
    body = b'{"error": ' + b'[' * 100000 + b']' * 100000 + b'}'
    error = failure(server, Answer(status=400, body=body), retry_timeout=0)
    assert error.code == 'bad_request'
    assert len(error.message) < 600


def test_only_imds_own_error_body_means_no_load_balancer(server):
    error = failure(server, Answer.from_fixture('proxy_404_html_with_phrase'))
    assert error.code == 'not_found'


@pytest.mark.parametrize('fixture', ['lb_404_no_metadata', 'lb_404_no_metadata_real'])
def test_both_spellings_of_the_no_load_balancer_answer_count(server, fixture):
    assert failure(server, Answer.from_fixture(fixture)).code == 'no_loadbalancer'


def test_not_modified_is_not_a_redirect(server):
    error = failure(server, Answer(status=304, body=b''))
    assert error.code == 'http_304'
    assert 'redirect' not in error.message


# -- text reads ----------------------------------------------------------------------------

def test_text_in_latin1_is_decoded_as_its_charset_says(server):
    server.queue(Answer(status=200, body='café'.encode('latin-1'), content_type='text/plain; charset=ISO-8859-1'))
    assert client_for(server).get_text('instance/compute/name', API) == 'café'


@pytest.mark.parametrize('answer', [
    Answer(status=200, body=gzip.compress(b'vm-1'), content_type='text/plain; charset=utf-8',
           headers={'Content-Encoding': 'gzip'}),
    Answer(status=200, body=b'vm-1', content_type='text/plain; charset=x-no-such-charset'),
    Answer(status=200, body=b'vm-1', content_type='text/plain; charset=rot13'),
    Answer(status=200, body=b'\xff\xfe\xfa', content_type='text/plain; charset=utf-8'),
])
def test_text_the_client_cannot_decode_is_refused(server, answer):
    server.queue(answer)
    with pytest.raises(ImdsError) as raised:
        client_for(server).get_text('instance/compute/name', API)
    assert raised.value.code == 'bad_encoding'


def test_compressed_json_is_refused_by_its_encoding(server):
    error = failure(server, Answer(status=200, body=gzip.compress(DOCUMENTED), headers={'Content-Encoding': 'gzip'}))
    assert error.code == 'bad_encoding'


# -- messages ------------------------------------------------------------------------------

def test_huge_content_type_is_capped_in_the_message(server):
    error = failure(server, Answer(status=200, body=b'{}', content_type='text/html' + 'x' * 60000))
    assert error.code == 'bad_content_type'
    assert len(error.message) < 400


def test_credentials_in_an_endpoint_are_never_echoed():
    with pytest.raises(ImdsError) as raised:
        ImdsClient(endpoint='http://admin:s3cr3t-pass@127.0.0.1:8080')
    assert raised.value.code == 'invalid_option'
    assert 's3cr3t' not in raised.value.message and 'admin' not in raised.value.message


def test_no_double_full_stops(server):
    error = failure(server, Answer.from_fixture('lb_503_unavailable'), fake_time=FakeTime(), retry_timeout=1)
    assert '..' not in error.message
    assert 'Retry later. Azure reports' in error.message


def test_fractional_retry_timeout_is_printed_as_given(server):
    error = failure(server, Answer.from_fixture('lb_503_unavailable'), fake_time=FakeTime(), retry_timeout=0.5)
    assert '(retry_timeout is 0.5 s)' in error.message


@pytest.mark.parametrize('retry_after', ['3000', '99999', 'inf'])
def test_retry_after_beyond_the_budget_gives_up_at_once_whatever_its_size(server, retry_after):
    fake_time = FakeTime()
    error = failure(server, Answer.from_fixture('lb_429_too_many', headers={'Retry-After': retry_after}),
                    fake_time=fake_time, retry_timeout=70)
    assert error.code == 'throttled'
    assert len(server.requests) == 1
    assert fake_time.now == 1000.0
    assert 'Retry-After' in error.message


# -- options -------------------------------------------------------------------------------

@pytest.mark.parametrize('options', [
    dict(timeout=float('nan')), dict(timeout=float('inf')), dict(timeout=1e300), dict(timeout=301),
    dict(timeout=0), dict(timeout='soon'), dict(timeout=True),
    dict(retry_timeout=float('nan')), dict(retry_timeout=float('inf')), dict(retry_timeout=-0.1),
    dict(retry_timeout=3601), dict(retry_timeout=None),
])
def test_non_finite_and_absurd_durations_are_invalid_options(options):
    with pytest.raises(ImdsError) as raised:
        ImdsClient(endpoint='http://127.0.0.1:1', **options)
    assert raised.value.code == 'invalid_option'


@pytest.mark.parametrize('options', [dict(timeout=300), dict(timeout=0.01), dict(retry_timeout=0),
                                     dict(retry_timeout=3600)])
def test_durations_at_the_ends_of_their_ranges_are_accepted(options):
    ImdsClient(endpoint='http://127.0.0.1:1', **options)


# -- what timeout bounds -------------------------------------------------------------------------

class _SilentSocket(object):
    """A socket whose connect never completes: each attempt uses all the time it is given (on a fake clock)."""

    attempts = []

    def __init__(self, fake_time):
        self.fake_time = fake_time
        self.timeout = None

    def settimeout(self, seconds):
        self.timeout = seconds

    def connect(self, address):
        _SilentSocket.attempts.append((address, self.timeout))
        self.fake_time.sleep(self.timeout)
        raise socket.timeout('timed out')

    def close(self):
        pass


def test_one_timeout_covers_every_address_of_a_host_name(monkeypatch):
    fake_time = FakeTime()
    _SilentSocket.attempts = []
    monkeypatch.setattr(_imds, 'resolve_before', lambda host, port, seconds: [
        (socket.AF_INET, ('192.0.2.%d' % n, port)) for n in (1, 2, 3)])
    monkeypatch.setattr(_imds.socket, 'socket', lambda family, kind: _SilentSocket(fake_time))
    client = ImdsClient(endpoint='http://imds.test', timeout=2, retry_timeout=0, clock=fake_time.clock,
                        sleep=fake_time.sleep)
    with pytest.raises(ImdsError) as raised:
        client.get_json(LB, API)
    assert raised.value.code == 'timeout'
    assert fake_time.now - 1000.0 <= 2.0
    assert len(_SilentSocket.attempts) == 1, 'the first address used the whole timeout; no others were tried'


def test_name_service_that_never_answers_costs_only_the_timeout(monkeypatch):
    monkeypatch.setattr(_imds.socket, 'getaddrinfo', lambda *args: time.sleep(3))
    client = ImdsClient(endpoint='http://imds.test', timeout=0.5, retry_timeout=0)
    started = time.monotonic()
    with pytest.raises(ImdsError) as raised:
        client.get_json(LB, API)
    assert raised.value.code == 'timeout'
    assert time.monotonic() - started < 2.5


def test_host_name_that_resolves_is_connected_to(server):
    server.queue(Answer.from_fixture('lb_200_documented'))
    # localhost (from /etc/hosts) may give ::1 first, where nothing listens: the next address is tried.
    client = ImdsClient(endpoint='http://localhost:%d' % server.port, timeout=2, retry_timeout=0)
    assert 'loadbalancer' in client.get_json(LB, API)


def test_unknown_host_name_is_unreachable(monkeypatch):
    def unknown(*args):
        raise socket.gaierror(socket.EAI_NONAME, 'Name or service not known')
    monkeypatch.setattr(_imds.socket, 'getaddrinfo', unknown)
    with pytest.raises(ImdsError) as raised:
        ImdsClient(endpoint='http://imds.test', timeout=2, retry_timeout=0).get_json(LB, API)
    assert raised.value.code == 'unreachable'
    assert 'Name or service not known' in raised.value.message


# -- cost of a read ------------------------------------------------------------------------------

def test_usage_counts_requests_and_seconds_including_waits(server):
    server.queue(Answer.from_fixture('lb_503_unavailable'), Answer.from_fixture('lb_200_documented'))
    fake_time = FakeTime()
    client = client_for(server, fake_time)
    client.get_json(LB, API)
    usage = client.usage()
    assert usage['imds_requests'] == 2
    assert usage['imds_seconds'] == round(fake_time.now - 1000.0, 3) > 0
