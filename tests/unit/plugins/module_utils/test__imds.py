# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.plugins.module_utils._imds import (
    ImdsClient,
    ImdsError,
    NotAzureError,
    normalize_path,
    parse_endpoint,
    validate_api_version,
)
from ansible_collections.imds.azure.plugins.module_utils._imds_failures import (
    backoff_delay,
    classify_error,
    error_text,
    newest_versions,
    parsed_json,
    retry_after_seconds,
)

from ansible_collections.imds.azure.tests.unit.utils.imds_client import FakeTime, client_for
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer, load_fixture

LB = 'loadbalancer'
API = '2020-10-01'


# -- documented answers ------------------------------------------------------

# fixture → (error code, retried?)
DOCUMENTED_ERRORS = {
    'lb_400_missing_parameter': ('bad_api_version', False),
    'lb_400_parameter_not_allowed': ('bad_api_version', False),
    'lb_400_unexpected_request': ('bad_request', False),
    'lb_404_no_metadata': ('no_loadbalancer', False),
    'lb_404_api_not_found': ('not_found', False),
    'lb_404_not_available': ('loadbalancer_unavailable', True),
    'lb_404_enabling': ('loadbalancer_unavailable', True),
    'lb_405_method': ('method_not_allowed', False),
    'lb_429_too_many': ('throttled', True),
    'lb_503_unavailable': ('unavailable', True),
    'imds_400_missing_header': ('bad_request', False),
    'imds_400_api_version': ('bad_api_version', False),
    'imds_410_gone': ('gone', True),
    'imds_500_internal': ('server_error', True),
}


@pytest.mark.parametrize('fixture', sorted(DOCUMENTED_ERRORS))
def test_documented_error_is_classified(fixture):
    data = load_fixture(fixture)
    body = data['body'] if isinstance(data['body'], str) else json.dumps(data['body'])
    error = classify_error(data['status'], body, '/metadata/loadbalancer')
    expected_code, expected_retryable = DOCUMENTED_ERRORS[fixture]
    assert (error.code, error.retryable, error.status) == (expected_code, expected_retryable, data['status'])
    assert str(data['status']) in error.message or expected_code in ('no_loadbalancer',)


@pytest.mark.parametrize('fixture', sorted(DOCUMENTED_ERRORS))
def test_documented_error_reaches_caller_with_its_code(server, fixture):
    server.queue(Answer.from_fixture(fixture))
    fake_time = FakeTime()
    with pytest.raises(ImdsError) as raised:
        client_for(server, fake_time, retry_timeout=3).get_json(LB, API)
    expected_code, retryable = DOCUMENTED_ERRORS[fixture]
    assert raised.value.code == expected_code
    assert len(server.requests) > 1 if retryable else len(server.requests) == 1
    if retryable:
        assert 'Gave up after %d attempt(s)' % len(server.requests) in raised.value.message


def test_no_loadbalancer_message_tells_what_it_means():
    data = load_fixture('lb_404_no_metadata')
    error = classify_error(404, data['body'], '/metadata/loadbalancer')
    assert 'Standard SKU load balancer' in error.message
    assert 'backend pool' in error.message


def test_api_version_error_lists_the_newest_versions():
    data = load_fixture('imds_400_api_version')
    error = classify_error(400, json.dumps(data['body']), '/metadata/instance')
    assert '2025-04-07, 2024-07-17, 2024-03-15' in error.message


def test_documented_loadbalancer_answer_is_returned_parsed(server):
    server.queue(Answer.from_fixture('lb_200_documented'))
    document = client_for(server).get_json(LB, API)
    assert document == load_fixture('lb_200_documented')['body']


def test_text_leaf_is_returned_as_text(server):
    server.queue(Answer.from_fixture('compute_vmid_200_text'))
    assert client_for(server).get_text('instance/compute/vmId', '2021-02-01') == '02aab8a4-74ef-476e-8182-f6d2ba4166a6'
    assert server.requests[0]['target'] == '/metadata/instance/compute/vmId?api-version=2021-02-01&format=text'


@pytest.mark.parametrize('answer, code', [
    (Answer(status=200, body=b'<html><body>Welcome</body></html>', content_type='text/html'), 'bad_content_type'),
    (Answer(status=200, body=b'<html>not json</html>'), 'invalid_json'),
    (Answer(status=200, body=b'{"loadbalancer": '), 'invalid_json'),
    (Answer(status=200, body=b'\xff\xfe{}'), 'invalid_json'),
])
def test_body_that_is_not_imds_json_is_an_error(server, answer, code):
    server.queue(answer)
    with pytest.raises(ImdsError) as raised:
        client_for(server).get_json(LB, API)
    assert raised.value.code == code


def test_refused_explicit_endpoint_fails_without_retry(closed_port):
    client = ImdsClient(endpoint='http://127.0.0.1:%d' % closed_port, timeout=1, retry_timeout=30)
    with pytest.raises(ImdsError) as raised:
        client.get_json(LB, API)
    assert raised.value.code == 'unreachable'
    assert not isinstance(raised.value, NotAzureError)
    assert client.attempts == 1


# -- retries -------------------------------------------------------------------

def test_transient_errors_are_retried_until_success(server):
    server.queue(Answer.from_fixture('lb_503_unavailable'), Answer.from_fixture('imds_410_gone'),
                 Answer(behaviour='reset'), Answer.from_fixture('lb_404_enabling'),
                 Answer.from_fixture('lb_200_documented'))
    fake_time = FakeTime()
    client = client_for(server, fake_time)
    assert 'loadbalancer' in client.get_json(LB, API)
    assert client.attempts == 5
    assert len(server.requests) == 5
    backoffs = [delay for delay in fake_time.sleeps if delay != _imds.MIN_REQUEST_INTERVAL]
    assert backoffs == sorted(backoffs), 'backoff grows between attempts'


def test_retry_budget_bounds_the_attempts(server):
    server.queue(Answer.from_fixture('imds_410_gone'))
    fake_time = FakeTime()
    client = client_for(server, fake_time, retry_timeout=20)
    with pytest.raises(ImdsError) as raised:
        client.get_json(LB, API)
    assert raised.value.code == 'gone'
    assert not raised.value.retryable
    assert fake_time.now - 1000.0 <= 20
    assert 'Gave up after %d attempt(s)' % client.attempts in raised.value.message


def test_zero_retry_timeout_means_one_attempt(server):
    server.queue(Answer.from_fixture('lb_429_too_many'))
    client = client_for(server, FakeTime(), retry_timeout=0)
    with pytest.raises(ImdsError):
        client.get_json(LB, API)
    assert client.attempts == 1


def test_retry_after_header_is_honoured(server):
    server.queue(Answer.from_fixture('lb_429_too_many', headers={'Retry-After': '3'}),
                 Answer.from_fixture('lb_200_documented'))
    fake_time = FakeTime()
    client_for(server, fake_time).get_json(LB, API)
    assert max(fake_time.sleeps) >= 3


def test_own_requests_stay_at_five_per_second(server):
    server.queue(*([Answer.from_fixture('lb_429_too_many')] * 6 + [Answer.from_fixture('lb_200_documented')]))
    client = client_for(server, rand=lambda: 0.0)  # no jitter: the pacing alone spaces the retries
    client.get_json(LB, API)
    times = [request['time'] for request in server.requests]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    assert len(times) == 7
    # Any window of 1 s holds at most 5 requests.
    assert all(later - earlier >= 1.0 - 0.05 for earlier, later in zip(times, times[5:]))
    assert min(gaps) >= _imds.MIN_REQUEST_INTERVAL - 0.05


def test_backoff_delay_grows_exponentially_and_is_capped():
    assert backoff_delay(0, rand=lambda: 1.0) == _imds.BACKOFF_BASE
    assert backoff_delay(3, rand=lambda: 1.0) == _imds.BACKOFF_BASE * 8
    assert backoff_delay(30, rand=lambda: 1.0) == _imds.BACKOFF_CAP
    assert backoff_delay(5, rand=lambda: 0.0) == _imds.MIN_REQUEST_INTERVAL


@pytest.mark.parametrize('value, expected', [('3', 3.0), (' 1.5 ', 1.5), (None, None), ('soon', None), ('-1', None),
                                             ('Wed, 21 Oct 2026 07:28:00 GMT', None), ('99999', 99999.0),
                                             ('nan', None), ('9' * 5000, 1e40)])
def test_retry_after_parsing(value, expected):
    # Any number of seconds counts (beyond the budget, the client gives up at once); the text is read up to 40
    # characters, so that no header is too long to convert.
    assert retry_after_seconds(value) == expected


# -- knowing whether this is Azure -------------------------------------------------

def test_dmi_that_is_not_azure_answers_without_any_request(tmp_path, server, monkeypatch):
    tag = tmp_path / 'chassis_asset_tag'
    tag.write_text('No Asset Tag\n')
    monkeypatch.setattr(_imds, 'DEFAULT_ENDPOINT', server.endpoint)
    client = ImdsClient(dmi_path=str(tag))
    with pytest.raises(NotAzureError) as raised:
        client.get_json(LB, API)
    assert 'not an Azure VM' in raised.value.message
    assert server.requests == []


def test_dmi_that_is_azure_lets_the_request_through(tmp_path, server, monkeypatch):
    tag = tmp_path / 'chassis_asset_tag'
    tag.write_text(_imds.AZURE_CHASSIS_ASSET_TAG + '\n')
    monkeypatch.setattr(_imds, 'DEFAULT_ENDPOINT', server.endpoint)
    server.queue(Answer.from_fixture('lb_200_documented'))
    assert 'loadbalancer' in ImdsClient(dmi_path=str(tag)).get_json(LB, API)


def test_unreadable_dmi_and_refused_default_endpoint_means_not_azure(tmp_path, closed_port, monkeypatch):
    monkeypatch.setattr(_imds, 'DEFAULT_ENDPOINT', 'http://127.0.0.1:%d' % closed_port)
    client = ImdsClient(dmi_path=str(tmp_path / 'missing'))
    with pytest.raises(NotAzureError):
        client.get_json(LB, API)
    assert client.attempts == 1


def test_azure_dmi_and_refused_default_endpoint_is_an_error(tmp_path, closed_port, monkeypatch):
    tag = tmp_path / 'chassis_asset_tag'
    tag.write_text(_imds.AZURE_CHASSIS_ASSET_TAG)
    monkeypatch.setattr(_imds, 'DEFAULT_ENDPOINT', 'http://127.0.0.1:%d' % closed_port)
    with pytest.raises(ImdsError) as raised:
        ImdsClient(dmi_path=str(tag), retry_timeout=0).get_json(LB, API)
    assert not isinstance(raised.value, NotAzureError)
    assert raised.value.code == 'unreachable'


def test_explicit_endpoint_skips_dmi(tmp_path, server):
    tag = tmp_path / 'chassis_asset_tag'
    tag.write_text('Not Azure')
    server.queue(Answer.from_fixture('lb_200_documented'))
    assert 'loadbalancer' in ImdsClient(endpoint=server.endpoint, dmi_path=str(tag)).get_json(LB, API)


# -- option validation ---------------------------------------------------------------

@pytest.mark.parametrize('path, expected', [
    ('loadbalancer', '/metadata/loadbalancer'),
    ('/metadata/instance/compute/', '/metadata/instance/compute'),
    ('instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress',
     '/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress'),
    ('metadata/versions', '/metadata/versions'),
])
def test_normalize_path(path, expected):
    assert normalize_path(path) == expected


@pytest.mark.parametrize('path', ['', '/', 'metadata', 'instance/../identity', 'instance?x=1', 'a b', 'instance/%2e', 5])
def test_invalid_path_is_refused(path):
    with pytest.raises(ImdsError) as raised:
        normalize_path(path)
    assert raised.value.code == 'invalid_option'


@pytest.mark.parametrize('endpoint, expected', [
    ('http://169.254.169.254', ('169.254.169.254', 80, '')),
    ('http://127.0.0.1:8080/', ('127.0.0.1', 8080, '')),
    ('http://[::1]:8080', ('::1', 8080, '')),
    ('http://imds.test/prefix/', ('imds.test', 80, '/prefix')),
])
def test_parse_endpoint(endpoint, expected):
    assert parse_endpoint(endpoint) == expected


@pytest.mark.parametrize('endpoint', ['https://169.254.169.254', '169.254.169.254', 'http://host:99999',
                                      'http://host/?x=1', 'http://user@host', 'ftp://host', None])
def test_invalid_endpoint_is_refused(endpoint):
    with pytest.raises(ImdsError) as raised:
        parse_endpoint(endpoint)
    assert raised.value.code == 'invalid_option'


@pytest.mark.parametrize('value', ['2020-10-01&x=1', 'latest', '', None, '2020-1-1'])
def test_invalid_api_version_is_refused(value):
    with pytest.raises(ImdsError):
        validate_api_version(value)


@pytest.mark.parametrize('kwargs', [dict(timeout=0), dict(timeout=-1), dict(retry_timeout=-1)])
def test_invalid_timeouts_are_refused(kwargs):
    with pytest.raises(ImdsError) as raised:
        ImdsClient(endpoint='http://127.0.0.1:1', **kwargs)
    assert raised.value.code == 'invalid_option'


def test_error_text_prefers_the_error_member():
    body = '{"error": "Bad request. Required metadata header not specified"}'
    assert error_text(body, parsed_json(body)) == 'Bad request. Required metadata header not specified'
    assert error_text(b'Too many requests\n', None) == 'Too many requests'
    assert error_text('x' * 1000, None).endswith('...')
    assert newest_versions(parsed_json('{"newest-versions": ["2025-04-07", 7]}')) == ['2025-04-07']
    assert newest_versions(parsed_json('not json')) == []


@pytest.mark.parametrize('depth', [_imds.MAX_JSON_DEPTH + 1, 100000])
def test_json_nested_too_deep_is_refused(server, depth):
    server.queue(Answer(status=200, body=b'[' * depth + b']' * depth))
    with pytest.raises(ImdsError) as raised:
        client_for(server).get_json(LB, API)
    assert raised.value.code == 'invalid_json'
    assert 'nested deeper' in raised.value.message


def test_json_at_the_depth_limit_is_accepted(server):
    depth = _imds.MAX_JSON_DEPTH
    server.queue(Answer(status=200, body=b'[' * depth + b']' * depth))
    document = client_for(server).get_json(LB, API)
    for _level in range(depth - 1):
        document = document[0]
    assert document == []


def test_last_retry_goes_out_when_the_budget_ends(server):
    # Full backoff would overshoot the budget after the first failure; the client still tries at its end.
    server.queue(Answer.from_fixture('imds_410_gone'), Answer.from_fixture('lb_200_documented'))
    fake_time = FakeTime()
    client = client_for(server, fake_time, retry_timeout=0.3, rand=lambda: 1.0)
    assert 'loadbalancer' in client.get_json(LB, API)
    assert client.attempts == 2
    assert fake_time.now - 1000.0 <= 0.3 + _imds.MIN_REQUEST_INTERVAL


def test_retry_after_beyond_the_budget_gives_up_at_once(server):
    server.queue(Answer.from_fixture('lb_429_too_many', headers={'Retry-After': '60'}))
    fake_time = FakeTime()
    client = client_for(server, fake_time, retry_timeout=10)
    with pytest.raises(ImdsError) as raised:
        client.get_json(LB, API)
    assert client.attempts == 1
    assert 'Gave up after 1 attempt(s)' in raised.value.message
