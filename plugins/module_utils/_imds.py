# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A small client for the Azure Instance Metadata Service (IMDS).

Built on http.client on purpose: IMDS is plain HTTP to a link-local address,
http.client never reads proxy variables and never follows redirects, and its
import costs far less than ansible.module_utils.urls on every managed host.
The client

- sends GET with ``Metadata: true`` and never ``X-Forwarded-For``, and
  POST only to the paths in POST_PATHS (approving a scheduled event, the one
  request IMDS documents that is not a GET), under the same rules,
- keeps its own requests at most 5 per second (the IMDS limit per VM),
- retries what Azure documents as transient (410, 429, 500, 503, the two
  transient 404 answers of the load balancer endpoint, reset connections)
  with exponential backoff and jitter inside a total time budget,
- caps the body size and the time spent on one request,
- with the default endpoint, checks the DMI chassis asset tag first so that
  hosts which are not Azure VMs get a fast answer instead of a hang.

It holds only what every request runs; the HTTP exchange (_imds_http.py) and
the failures (_imds_failures.py) load lazily: see "Module load time" in
CONTRIBUTING.md.
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
# The accepted ranges: IMDS answers in milliseconds, and cloud-init's 300 s deadline is the longest any tool waits.
MAX_TIMEOUT = 300.0
MAX_RETRY_TIMEOUT = 3600.0
MAX_BODY_BYTES = 1024 * 1024
# IMDS documents are a few levels deep; anything deeper is not IMDS and could exhaust the recursion limit.
MAX_JSON_DEPTH = 64
# IMDS allows 5 requests per second per VM.
MIN_REQUEST_INTERVAL = 0.2
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
# The only paths (below /metadata/) the client sends a POST to: approving scheduled events.
POST_PATHS = ('scheduledevents',)

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
    """An IMDS request failed; ``code`` is a short machine-readable word (ERROR_CODES in _imds_failures.py)."""

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
    text = ' '.join(text[:limit * 4].split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def shown(value, limit=80):
    """repr() of a value for a message: capped, and with the user:password part of a URL left out."""
    text = repr(value if not isinstance(value, str) else value[:limit * 4])
    scheme, separator, rest = text.partition('://')
    if separator and '@' in rest:
        text = scheme + separator + '***@' + rest.rsplit('@', 1)[1]
    return text if len(text) <= limit else text[:limit - 3] + '...'


def os_error_text(exc):
    return getattr(exc, 'strerror', None) or exc.__class__.__name__


def _invalid_option(message):
    return ImdsError(message, code='invalid_option')


def seconds_option(name, value, low, high, low_included):
    """A float option within its range; NaN, infinities and absurd values are refused."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = None
    if isinstance(value, bool) or number is None or not (low < number <= high or (low_included and number == low)):
        raise _invalid_option('%s must be %s %g and at most %g seconds, got %s.'
                              % (name, 'at least' if low_included else 'more than', low, high, shown(value)))
    return number


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
        raise _invalid_option('api_version must look like YYYY-MM-DD, got %s.' % shown(value))
    return value


def normalize_path(path):
    """``instance/compute`` or ``/metadata/instance/compute`` → ``/metadata/instance/compute``."""
    if not isinstance(path, str):
        raise _invalid_option('path must be a string, got %s.' % shown(path))
    segments = [segment for segment in path.strip().strip('/').split('/') if segment]
    if segments and segments[0] == 'metadata':
        segments = segments[1:]
    if not segments:
        raise _invalid_option('path must name an IMDS path such as instance/compute or loadbalancer.')
    for segment in segments:
        if segment in ('.', '..') or not _NAME_CHARACTERS.issuperset(segment):
            raise _invalid_option('path %s has an invalid segment %s; use letters, digits, "_", "-" and "/" only.'
                                  % (shown(path), shown(segment, 40)))
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
        raise _invalid_option('endpoint must be a plain http://host[:port] URL (IMDS does not use TLS), got %s.'
                              % shown(endpoint))
    port = int(port) if port else 80
    if not 0 < port < 65536:
        raise _invalid_option('endpoint port must be 1-65535, got %d.' % port)
    return host, port, (slash + base).rstrip('/')


class ImdsClient(object):
    """Fetches IMDS paths with Azure's rules for headers, rate, retries and errors."""

    def __init__(self, endpoint=None, timeout=DEFAULT_TIMEOUT, retry_timeout=DEFAULT_RETRY_TIMEOUT,
                 clock=time.monotonic, sleep=time.sleep, rand=random.random,
                 dmi_path=None):
        self.timeout = seconds_option('timeout', timeout, 0, MAX_TIMEOUT, low_included=False)
        self.retry_timeout = seconds_option('retry_timeout', retry_timeout, 0, MAX_RETRY_TIMEOUT, low_included=True)
        # Detection applies only to the default address: an explicit endpoint is what the user asked for.
        self.detect = endpoint is None
        self.endpoint = DEFAULT_ENDPOINT if endpoint is None else endpoint
        self.host, self.port, self.base_path = parse_endpoint(self.endpoint)
        # What messages show: a valid endpoint holds no credentials, but may be long.
        self.endpoint = short_text(self.endpoint.strip(), 120)
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self.dmi_path = dmi_path or DMI_CHASSIS_ASSET_TAG_PATH
        # Requests sent (connection attempts included) and seconds spent in get(), waits included.
        self.attempts = 0
        self.seconds = 0.0
        # True or False once DMI has been read; None when it cannot be read or was not read.
        self.dmi_says_azure = None
        self._detected = False
        self._last_request_at = None

    # -- public API ---------------------------------------------------------

    def get_json(self, path, api_version=None):
        """GET a path and return the decoded JSON document."""
        body, charset = self.get(path, api_version=api_version, fmt='json')
        return decode_json(body, charset, path)

    def post_json(self, path, document, api_version):
        """POST ``document`` as JSON to one of POST_PATHS; the decoded answer, or None when the answer is empty.

        Any other path is refused with ``post_not_allowed`` before anything is
        sent. Retries, pacing, the deadline and the body limit are those of GET:
        approving a scheduled event again is harmless.
        """
        full_path = normalize_path(path)
        if full_path not in ['/metadata/' + allowed for allowed in POST_PATHS]:
            raise ImdsError('The client sends POST only to %s, not to %s; nothing was sent.'
                            % (', '.join('/metadata/' + allowed for allowed in POST_PATHS), shown(full_path)),
                            code='post_not_allowed')
        body = json.dumps(document, separators=(',', ':')).encode('utf-8')
        if len(body) > MAX_BODY_BYTES:
            raise _invalid_option('The document to POST to %s is larger than %d bytes; nothing was sent.'
                                  % (full_path, MAX_BODY_BYTES))
        answer, charset = self._send(full_path, self._target(full_path, api_version, 'json'), 'json', body)
        if not answer.strip():
            return None
        return decode_json(answer, charset, path)

    def get_text(self, path, api_version=None):
        """GET a leaf path with format=text and return the text, decoded as its charset says."""
        body, charset = self.get(path, api_version=api_version, fmt='text')
        try:
            return decode_body(body, charset or 'utf-8', path)
        except UnicodeDecodeError as exc:
            raise failures().undecodable_text(normalize_path(path), charset or 'utf-8', exc)

    def get(self, path, api_version=None, fmt='json'):
        """GET a path, retrying transient failures; returns the raw body bytes and the charset IMDS named."""
        full_path = normalize_path(path)
        return self._send(full_path, self._target(full_path, api_version, fmt), fmt)

    def usage(self):
        """What reading IMDS cost: the imds_requests and imds_seconds keys of a module result."""
        return {'imds_requests': self.attempts, 'imds_seconds': round(self.seconds, 3)}

    # -- internals ----------------------------------------------------------

    def _target(self, full_path, api_version, fmt):
        """The request target: the path and its query (both values are checked to need no escaping)."""
        query = []
        if api_version is not None:
            query.append('api-version=' + validate_api_version(api_version))
        if fmt == 'text':
            query.append('format=text')
        return self.base_path + full_path + ('?' + '&'.join(query) if query else '')

    def _send(self, full_path, target, fmt, body=None):
        """One request (a POST of ``body`` when given, else a GET), retrying transient failures; (body, charset)."""
        started = self.clock()
        try:
            self._check_dmi()
            retry = 0
            while True:
                try:
                    return self._request_once(full_path, target, fmt, body)
                except ImdsError as exc:
                    if not exc.retryable:
                        raise
                    delay = failures().retry_delay(exc, retry, self.rand, self.clock() - started, self.retry_timeout,
                                                   self.attempts)
                retry += 1
                self.sleep(delay)
        finally:
            self.seconds += self.clock() - started

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

    def _request_once(self, path, target, fmt, body=None):
        self._pace()
        self.attempts += 1
        deadline = self.clock() + self.timeout
        try:
            sock = self._connect(deadline)
        except OSError as exc:
            raise self._connect_failure(exc)
        # Loaded only now: where nothing answers, neither it nor http.client is compiled.
        from ansible_collections.imds.azure.plugins.module_utils._imds_http import exchange
        return exchange(self, sock, path, target, fmt, deadline, body)

    def _connect(self, deadline):
        """A connected socket; resolving the name and trying each of its addresses all stop at ``deadline``."""
        last_error = socket.timeout('timed out')
        for family, address in self._addresses(deadline):
            remaining = deadline - self.clock()
            if remaining <= 0:
                break
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(remaining)
                sock.connect(address)
                return sock
            except OSError as exc:
                sock.close()
                last_error = exc
        raise last_error

    def _addresses(self, deadline):
        """(family, sockaddr) pairs for the endpoint's host; an address literal needs no name service."""
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                socket.inet_pton(family, self.host)
            except (OSError, ValueError):
                continue
            return [(family, (self.host, self.port))]
        return resolve_before(self.host, self.port, deadline - self.clock())


def resolve_before(host, port, seconds):
    """getaddrinfo() for a host name, given up after ``seconds``: the name service has no timeout of its own.

    The lookup runs in a daemon thread, so a name server that never answers
    costs this request its timeout and nothing more.
    """
    import threading  # only for endpoints given as a name

    outcome = []

    def lookup():
        try:
            outcome.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except Exception as exc:  # handed to the caller below
            outcome.append(exc)

    worker = threading.Thread(target=lookup, name='imds-resolve')
    worker.daemon = True
    worker.start()
    worker.join(max(seconds, 0))
    if not outcome:
        raise socket.timeout('name resolution of %s timed out' % short_text(host, 80))
    if isinstance(outcome[0], Exception):
        raise outcome[0]
    return [(family, address) for family, _type, _proto, _name, address in outcome[0]]


def decode_body(body, charset, path):
    """The text of a body in the charset its Content-Type named; an encoding Python lacks is refused."""
    try:
        return body.decode(charset)
    except LookupError:
        raise failures().unknown_charset(normalize_path(path), charset)


def decode_json(body, charset, path):
    """The JSON document in a body; not JSON, or nested deeper than MAX_JSON_DEPTH, is an invalid_json error."""
    try:
        document = json.loads(decode_body(body, charset or 'utf-8', path))
    except ValueError as exc:  # UnicodeDecodeError included
        raise failures().invalid_json(normalize_path(path), body, exc)
    except RecursionError:
        raise failures().too_deep(normalize_path(path))
    if json_depth_exceeds(document, MAX_JSON_DEPTH):
        raise failures().too_deep(normalize_path(path))
    return document


def json_depth_exceeds(document, limit):
    """Whether lists and objects in document nest deeper than limit (checked without recursion).

    Only containers are queued: the scalars, most of any document, are never touched.
    """
    containers = (list, dict)
    if not isinstance(document, containers):
        return False
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        pending.extend((child, depth + 1) for child in children if isinstance(child, containers))
    return False


def imds_argument_spec(default_api_version, default_timeout=DEFAULT_TIMEOUT):
    """Options shared by every module of the collection (see the imds doc fragment)."""
    return dict(
        endpoint=dict(type='str'),
        api_version=dict(type='str', default=default_api_version),
        timeout=dict(type='float', default=default_timeout),
        retry_timeout=dict(type='float', default=DEFAULT_RETRY_TIMEOUT),
    )


def client_from_params(params):
    """An ImdsClient configured from a module's validated parameters."""
    return ImdsClient(endpoint=params.get('endpoint'), timeout=params['timeout'],
                      retry_timeout=params['retry_timeout'])
