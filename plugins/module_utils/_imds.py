# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A small client for the Azure Instance Metadata Service (IMDS).

Built on http.client on purpose: IMDS is plain HTTP to a link-local address,
http.client never reads proxy variables and never follows redirects, and its
import costs far less than ansible.module_utils.urls on every managed host.
The client

- sends only GET with ``Metadata: true`` and never ``X-Forwarded-For``,
- keeps its own requests at most 5 per second (the IMDS limit per VM),
- retries what Azure documents as transient (410, 429, 500, 503, the two
  transient 404 answers of the load balancer endpoint, reset connections)
  with exponential backoff and jitter inside a total time budget,
- caps the body size and the time spent on one request,
- with the default endpoint, checks the DMI chassis asset tag first so that
  hosts which are not Azure VMs get a fast answer instead of a hang.

Modules compile this file on every run on every host, so it holds only what
every request runs. The HTTP exchange (_imds_http.py, with http.client) is
loaded only once a connection is open, and failures (messages, advice, retry
decisions, in _imds_failures.py) only when something fails: hosts that are
not Azure VMs load none of them.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import random
import socket
import time

DEFAULT_ENDPOINT = 'http://169.254.169.254'
AZURE_CHASSIS_ASSET_TAG = '7783-7084-3265-9085-8269-3286-77'
DMI_CHASSIS_ASSET_TAG_PATH = '/sys/class/dmi/id/chassis_asset_tag'

DEFAULT_TIMEOUT = 5.0
# Azure: "retry after some time for a max of 70 seconds" (410 while IMDS starts).
DEFAULT_RETRY_TIMEOUT = 70.0
MAX_BODY_BYTES = 1024 * 1024
# IMDS documents are a few levels deep; anything deeper is not IMDS and could exhaust the recursion limit.
MAX_JSON_DEPTH = 64
# IMDS allows 5 requests per second per VM.
MIN_REQUEST_INTERVAL = 0.2
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0

# Options are checked with sets of characters, not regular expressions: compiling patterns costs every run.
_NAME_CHARACTERS = frozenset('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-')
_IPV6_CHARACTERS = frozenset('0123456789ABCDEFabcdef:.')
_BASE_PATH_CHARACTERS = _NAME_CHARACTERS | frozenset('/')
# Connect errors that say nothing is there: refused, no route, blackhole and
# prohibit routes (EINVAL, EACCES) and firewall rules (EPERM). Hosts that are
# not on Azure often fence off 169.254.169.254 in one of these ways.
_NOTHING_THERE = (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN,
                  errno.EHOSTDOWN, errno.EINVAL, errno.EACCES, errno.EPERM)


class ImdsError(Exception):
    """An IMDS request failed; ``code`` is a short machine-readable word."""

    def __init__(self, message, code='error', status=None, retryable=False, body=None):
        super(ImdsError, self).__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retryable = retryable
        self.body = body
        # Seconds from a Retry-After header, when IMDS sent one.
        self.retry_after = None


class NotAzureError(ImdsError):
    """This host is not an Azure VM (or its IMDS cannot be reached at all)."""

    def __init__(self, message):
        super(NotAzureError, self).__init__(message, code='not_azure')


def failures():
    """The failure handling (_imds_failures.py), loaded on first use."""
    from ansible_collections.imds.azure.plugins.module_utils import _imds_failures
    return _imds_failures


def short_text(text, limit=300):
    """Text on one line, cut to ``limit`` characters."""
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def os_error_text(exc):
    return getattr(exc, 'strerror', None) or exc.__class__.__name__


def _invalid_option(message):
    return ImdsError(message, code='invalid_option')


_ASCII_DIGITS = frozenset('0123456789')


def ascii_digits(text):
    """Whether text is one or more of the digits 0-9 (str.isdigit also accepts other scripts' digits)."""
    return bool(text) and _ASCII_DIGITS.issuperset(text)


def read_dmi_chassis_asset_tag(path=DMI_CHASSIS_ASSET_TAG_PATH):
    """The chassis asset tag, or None when DMI cannot be read (containers, some VMs)."""
    try:
        with open(path, 'rb') as handle:
            return handle.read(256).decode('ascii', 'replace').strip()
    except (IOError, OSError):
        return None


def validate_api_version(value):
    """An api-version is a date: YYYY-MM-DD."""
    if not (isinstance(value, str) and len(value) == 10 and value[4] == value[7] == '-'
            and ascii_digits(value[:4] + value[5:7] + value[8:])):
        raise _invalid_option('api_version must look like YYYY-MM-DD, got %r.' % (value,))
    return value


def normalize_path(path):
    """``instance/compute`` or ``/metadata/instance/compute`` → ``/metadata/instance/compute``."""
    if not isinstance(path, str):
        raise _invalid_option('path must be a string, got %r.' % (path,))
    segments = [segment for segment in path.strip().strip('/').split('/') if segment]
    if segments and segments[0] == 'metadata':
        segments = segments[1:]
    if not segments:
        raise _invalid_option('path must name an IMDS path such as instance/compute or loadbalancer.')
    for segment in segments:
        if segment in ('.', '..') or not _NAME_CHARACTERS.issuperset(segment):
            raise _invalid_option('path %r has an invalid segment %r; use letters, digits, "_", "-" and "/" only.'
                                  % (path, segment))
    return '/metadata/' + '/'.join(segments)


def parse_endpoint(endpoint):
    """Split a plain ``http://host[:port][/base]`` endpoint into host, port and base path."""
    text = endpoint.strip() if isinstance(endpoint, str) else ''
    authority, slash, base = text[len('http://'):].partition('/')
    if authority.startswith('['):
        host, bracket, port_part = authority[1:].partition(']')
        allowed = _IPV6_CHARACTERS if bracket else frozenset()
    else:
        host, colon, port = authority.partition(':')
        port_part = colon + port
        allowed = _NAME_CHARACTERS
    port = port_part[1:]
    if not (text.startswith('http://') and host and allowed.issuperset(host)
            and (not port_part or (port_part[0] == ':' and len(port) <= 5 and ascii_digits(port)))
            and _BASE_PATH_CHARACTERS.issuperset(base)):
        raise _invalid_option('endpoint must be a plain http://host[:port] URL (IMDS does not use TLS), got %r.'
                              % (endpoint,))
    port = int(port) if port else 80
    if not 0 < port < 65536:
        raise _invalid_option('endpoint port must be 1-65535, got %d.' % port)
    return host, port, (slash + base).rstrip('/')


class ImdsClient(object):
    """Fetches IMDS paths with Azure's rules for headers, rate, retries and errors."""

    def __init__(self, endpoint=None, timeout=DEFAULT_TIMEOUT, retry_timeout=DEFAULT_RETRY_TIMEOUT,
                 clock=time.monotonic, sleep=time.sleep, rand=random.random,
                 dmi_path=None):
        if timeout is None or timeout <= 0:
            raise _invalid_option('timeout must be a positive number of seconds.')
        if retry_timeout is None or retry_timeout < 0:
            raise _invalid_option('retry_timeout must be zero or a positive number of seconds.')
        # Detection applies only to the default address: an explicit endpoint is what the user asked for.
        self.detect = endpoint is None
        self.endpoint = DEFAULT_ENDPOINT if endpoint is None else endpoint
        self.host, self.port, self.base_path = parse_endpoint(self.endpoint)
        self.timeout = float(timeout)
        self.retry_timeout = float(retry_timeout)
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self.dmi_path = dmi_path or DMI_CHASSIS_ASSET_TAG_PATH
        self.attempts = 0
        # True or False once DMI has been read; None when it cannot be read or was not read.
        self.dmi_says_azure = None
        self._detected = False
        self._last_request_at = None

    # -- public API ---------------------------------------------------------

    def get_json(self, path, api_version=None):
        """GET a path and return the decoded JSON document."""
        body = self.get(path, api_version=api_version, fmt='json')
        try:
            document = json.loads(body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            raise failures().invalid_json(normalize_path(path), body, exc)
        except RecursionError:
            raise failures().too_deep(normalize_path(path))
        if json_depth_exceeds(document, MAX_JSON_DEPTH):
            raise failures().too_deep(normalize_path(path))
        return document

    def get_text(self, path, api_version=None):
        """GET a leaf path with format=text and return the text."""
        return self.get(path, api_version=api_version, fmt='text').decode('utf-8', 'replace')

    def get(self, path, api_version=None, fmt='json'):
        """GET a path, retrying transient failures; returns the raw body bytes."""
        full_path = normalize_path(path)
        # Both values are checked to need no escaping.
        query = []
        if api_version is not None:
            query.append('api-version=' + validate_api_version(api_version))
        if fmt == 'text':
            query.append('format=text')
        target = self.base_path + full_path + ('?' + '&'.join(query) if query else '')

        self._check_dmi()
        started = self.clock()
        retry = 0
        while True:
            try:
                return self._request_once(full_path, target, fmt)
            except ImdsError as exc:
                if not exc.retryable:
                    raise
                delay = failures().retry_delay(exc, retry, self.rand, self.clock() - started, self.retry_timeout,
                                               self.attempts)
            retry += 1
            self.sleep(delay)

    # -- internals ----------------------------------------------------------

    def _check_dmi(self):
        if not self.detect or self._detected:
            return
        self._detected = True
        tag = read_dmi_chassis_asset_tag(self.dmi_path)
        if tag is None:
            return  # unknown: the connection attempt decides
        self.dmi_says_azure = tag == AZURE_CHASSIS_ASSET_TAG
        if not self.dmi_says_azure:
            raise NotAzureError('This host is not an Azure VM: its DMI chassis asset tag is %r, not the one every '
                                'Azure VM has. No request was sent.' % short_text(tag, 60))

    def _pace(self):
        """Keep this client's own requests at or below 5 per second."""
        now = self.clock()
        if self._last_request_at is not None:
            wait = self._last_request_at + MIN_REQUEST_INTERVAL - now
            if wait > 0:
                self.sleep(wait)
                now = self.clock()
        self._last_request_at = now

    def _connect_failure(self, exc):
        """The error for a connection that could not be opened; part of detection, so kept here."""
        not_azure = self.detect and not self.dmi_says_azure
        if isinstance(exc, socket.timeout):
            if not_azure:
                return NotAzureError('No Azure IMDS here: %s did not accept a connection within %.1f s and DMI does '
                                     'not identify an Azure VM.' % (self.endpoint, self.timeout))
            return ImdsError('IMDS at %s did not accept a connection within %.1f s (timeout).'
                             % (self.endpoint, self.timeout), code='timeout')
        if not_azure and exc.errno in _NOTHING_THERE:
            return NotAzureError('No Azure IMDS here: %s is unreachable (%s), so this host is not an Azure VM.'
                                 % (self.endpoint, os_error_text(exc)))
        if exc.errno == errno.ECONNRESET:
            return ImdsError('IMDS at %s reset the connection (%s).' % (self.endpoint, os_error_text(exc)),
                             code='connection_reset', retryable=True)
        return ImdsError('Cannot connect to IMDS at %s: %s. Check the endpoint option and that the service there is '
                         'running.' % (self.endpoint, os_error_text(exc)), code='unreachable')

    def _request_once(self, path, target, fmt):
        self._pace()
        self.attempts += 1
        deadline = self.clock() + self.timeout
        try:
            sock = socket.create_connection((self.host, self.port), self.timeout)
        except OSError as exc:
            raise self._connect_failure(exc)
        # Loaded only now: where nothing answers, neither it nor http.client is compiled.
        from ansible_collections.imds.azure.plugins.module_utils._imds_http import exchange
        return exchange(self, sock, path, target, fmt, deadline)


def json_depth_exceeds(document, limit):
    """Whether lists and objects in document nest deeper than limit (checked without recursion)."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, (list, dict)):
            if depth > limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
    return False


def imds_argument_spec(default_api_version):
    """Options shared by every module of the collection (see the imds doc fragment)."""
    return dict(
        endpoint=dict(type='str'),
        api_version=dict(type='str', default=default_api_version),
        timeout=dict(type='float', default=DEFAULT_TIMEOUT),
        retry_timeout=dict(type='float', default=DEFAULT_RETRY_TIMEOUT),
    )


def client_from_params(params):
    """An ImdsClient configured from a module's validated parameters."""
    return ImdsClient(endpoint=params.get('endpoint'), timeout=params['timeout'],
                      retry_timeout=params['retry_timeout'])
