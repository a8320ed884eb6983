# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible_collections.imds.azure.plugins.modules import metadata_info
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer, load_fixture
from ansible_collections.imds.azure.tests.unit.utils.module_runner import run_against


def run(server, **args):
    return run_against(server, metadata_info.main, **args)


def test_versions_are_read_without_api_version(server):
    server.queue(Answer.from_fixture('versions_200'))
    failed, result = run(server, path='versions')
    assert not failed
    assert result['metadata'] == load_fixture('versions_200')['body']
    assert result['api_version'] is None
    assert server.requests[0]['target'] == '/metadata/versions'


def test_text_leaf(server):
    server.queue(Answer.from_fixture('compute_vmid_200_text'))
    failed, result = run(server, path='/metadata/instance/compute/vmId', format='text')
    assert not failed
    assert result['metadata'] == '02aab8a4-74ef-476e-8182-f6d2ba4166a6'
    assert result['path'] == '/metadata/instance/compute/vmId'
    assert server.requests[0]['target'] == '/metadata/instance/compute/vmId?api-version=2021-02-01&format=text'


def test_json_path(server):
    server.queue(Answer(status=200, body={'name': 'web-0', 'vmScaleSetName': 'web'}))
    failed, result = run(server, path='instance/compute', api_version='2025-04-07')
    assert not failed
    assert result['metadata']['vmScaleSetName'] == 'web'
    assert result['changed'] is False


@pytest.mark.parametrize('fixture, code', [('imds_400_api_version', 'bad_api_version'),
                                           ('lb_404_api_not_found', 'not_found')])
def test_errors_fail_with_the_documented_meaning(server, fixture, code):
    server.queue(Answer.from_fixture(fixture))
    failed, result = run(server, path='instance/nothing')
    assert failed
    assert result['error_code'] == code
    assert 'metadata' not in result


def test_path_traversal_is_refused(server):
    failed, result = run(server, path='instance/../../identity/oauth2/token')
    assert failed
    assert 'invalid segment' in result['msg']
    assert server.requests == []


def test_cost_of_the_read_is_reported_on_success_and_failure(server):
    server.queue(Answer(status=200, body={'name': 'web-0'}))
    failed, result = run(server, path='instance/compute')
    assert not failed
    assert result['imds_requests'] == 1 and isinstance(result['imds_seconds'], float)
    failed, result = run(server, path='instance/../x')
    assert failed
    assert (result['imds_requests'], result['imds_seconds']) == (0, 0.0)


def test_text_read_honours_the_charset(server):
    server.queue(Answer(status=200, body='Zürich'.encode('latin-1'), content_type='text/plain; charset=latin-1'))
    failed, result = run(server, path='instance/compute/location', format='text')
    assert not failed
    assert result['metadata'] == 'Zürich'


def test_deeply_nested_error_body_fails_with_an_error_code(server):
    server.queue(Answer(status=404, body=b'{"error": ' + b'[' * 50000 + b']' * 50000 + b'}'))
    failed, result = run(server, path='instance/compute')
    assert failed
    assert result['error_code'] == 'not_found'
