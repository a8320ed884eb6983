# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Property tests: the option checks accept exactly what their specification allows.

The client checks options with string methods, because compiling regular
expressions costs every module run. The specification of each option is
easiest to read as a regular expression, so here the expressions are the
oracle the checks are compared with.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import re

from hypothesis import example, given, settings, strategies as st

from ansible_collections.imds.azure.plugins.module_utils._imds import (
    ImdsError,
    normalize_path,
    parse_endpoint,
    validate_api_version,
)

ENDPOINT_SPEC = re.compile(r'http://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::([0-9]{1,5}))?(/[A-Za-z0-9_./-]*)?\Z')
API_VERSION_SPEC = re.compile(r'[0-9]{4}-[0-9]{2}-[0-9]{2}\Z')
SEGMENT_SPEC = re.compile(r'[A-Za-z0-9_.-]+\Z')

# Endpoints built from parts that are each often valid and sometimes not, plus free text.
SCHEMES = ['http://', 'https://', 'http:/', 'HTTP://', ' http://', '']
HOSTS = ['127.0.0.1', 'imds.test', '[::1]', '[fe80::1]', '[::1', '::1', '[]', '', 'a_b-c', 'user@host', 'h\u0661',
         '[::g]', 'host name', '169.254.169.254']
PORTS = ['', ':80', ':8080', ':0', ':65535', ':65536', ':99999', ':123456', ':', ':x', ':\u0661', ': 80', '::80']
PATHS = ['', '/', '/base', '/base/', '//', '/?x=1', '/a b', '/#', '/%2e', '/a\u0661', '/.._-', '\n', ' ']
structured = st.tuples(*(st.sampled_from(parts) for parts in (SCHEMES, HOSTS, PORTS, PATHS))).map(''.join)
endpoints = structured | st.text(max_size=30)
versions = st.lists(st.sampled_from(['2020', '10', '01', '-', '1', '\u0661', '\u00b2', 'x', ' ', '&']),
                    max_size=6).map(''.join) | st.text(max_size=12)


def accepted(check, value):
    try:
        return check(value)
    except ImdsError as exc:
        assert exc.code == 'invalid_option'
        return None


def endpoint_by_spec(endpoint):
    match = ENDPOINT_SPEC.match(endpoint.strip())
    if not match:
        return None
    host, port, base = match.groups()
    port = int(port) if port else 80
    if not 0 < port < 65536:
        return None
    return host.strip('[]'), port, (base or '').rstrip('/')


@settings(max_examples=1000, deadline=None)
@given(endpoints)
@example('http://[::1]:8080/base/')
@example('http://host:')
@example('http://[::1]x')
@example('http://h\u0661:80')
@example('http://host/?x=1')
def test_endpoint_check_matches_its_specification(endpoint):
    assert accepted(parse_endpoint, endpoint) == endpoint_by_spec(endpoint)


@settings(max_examples=500, deadline=None)
@given(versions)
@example('2020-10-01')
@example('2020-1\u0661-01')
def test_api_version_check_matches_its_specification(value):
    expected = value if API_VERSION_SPEC.match(value) else None
    assert accepted(validate_api_version, value) == expected


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(['instance', 'compute', 'metadata', '..', '.', 'a b', '%2e', 'x?y', '\u0661', '-_.']),
                max_size=4).map('/'.join))
def test_path_check_matches_its_specification(path):
    segments = [segment for segment in path.strip().strip('/').split('/') if segment]
    if segments and segments[0] == 'metadata':
        segments = segments[1:]
    valid = bool(segments) and all(SEGMENT_SPEC.match(segment) and segment not in ('.', '..') for segment in segments)
    assert accepted(normalize_path, path) == ('/metadata/' + '/'.join(segments) if valid else None)
