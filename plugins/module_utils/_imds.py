# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A small client for the Azure Instance Metadata Service (IMDS).

Built on http.client on purpose: IMDS is plain HTTP to a link-local address,
http.client never reads proxy variables and never follows redirects, and its
import is cheap on every managed host. The client

- sends only GET with ``Metadata: true`` and never ``X-Forwarded-For``,
- keeps its own requests at most 5 per second (the IMDS limit per VM),
- retries what Azure documents as transient (410, 429, 500, 503, the two
  transient 404 answers of the load balancer endpoint, reset connections)
  with exponential backoff and jitter inside a total time budget,
- caps the body size and the time spent on one request,
- with the default endpoint, checks the DMI chassis asset tag first so that
  hosts which are not Azure VMs get a fast answer instead of a hang.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import io
import json
import random
import re
import socket
import time

from http import client as http_client

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

USER_AGENT = 'imds.azure-ansible'

_API_VERSION_PATTERN = re.compile(r'^\d{4}-\d{2}-\d{2}$')
_PATH_SEGMENT_PATTERN = re.compile(r'^[A-Za-z0-9_.-]+$')
_ENDPOINT_PATTERN = re.compile(r'^http://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?(/[A-Za-z0-9_./-]*)?$')

_LB_NO_METADATA = 'no load balancer metadata is found'
_LB_TRANSIENT_404 = ("isn't available right now", 'is not available right now', "isn't currently available",
                     'is not currently available')

TRANSIENT_STATUSES = (410, 429, 500, 503)

# What each documented status means for the user: (short code, explanation and advice).
STATUS_ADVICE = {
    400: ('bad_request', 'IMDS rejected the request as malformed. A proxy or middlebox may have altered it, '
                         'or the api_version or format is not accepted for this path.'),
    404: ('not_found', 'IMDS has no such path. Check the path and api_version options.'),
    405: ('method_not_allowed', 'IMDS only allows GET; something between this host and IMDS changed the request.'),
    410: ('gone', 'IMDS is not ready yet (Azure advises retrying for up to 70 seconds). '
                  'Raise retry_timeout if this persists while the VM starts.'),
    429: ('throttled', 'IMDS throttled the requests: more than 5 per second came from this VM. '
                       'Reduce concurrent IMDS callers on the VM or raise retry_timeout.'),
    500: ('server_error', 'IMDS had an internal error. Retry later.'),
    503: ('unavailable', 'Azure reports a temporary outage of IMDS on this VM.'),
}


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


def _short(text, limit=300):
    text = ' '.join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def error_text(body):
    """The human part of an IMDS error body: its "error" member, or the text itself."""
    if not body:
        return ''
    if isinstance(body, bytes):
        body = body.decode('utf-8', 'replace')
    try:
        parsed = json.loads(body)
    except ValueError:
        return _short(body)
    if isinstance(parsed, dict) and isinstance(parsed.get('error'), str):
        return _short(parsed['error'])
    return _short(body)


def newest_versions(body):
    """The api-versions IMDS suggests in a 400 answer, if it listed any."""
    try:
        parsed = json.loads(body)
    except (TypeError, ValueError):
        return []
    versions = parsed.get('newest-versions') if isinstance(parsed, dict) else None
    if isinstance(versions, list):
        return [v for v in versions if isinstance(v, str)]
    return []


def classify_error(status, body, path):
    """Turn a non-200 answer into an ImdsError that says what happened and what to do."""
    detail = error_text(body)
    lowered = detail.lower()
    if 300 <= status < 400:
        return ImdsError('IMDS answered %s with a redirect (HTTP %d); redirects are never followed because IMDS does '
                         'not redirect. Check the endpoint option.' % (path, status), code='redirect', status=status)
    if status == 404 and _LB_NO_METADATA in lowered:
        return ImdsError('No load balancer metadata: this VM is not in the backend pool of a Standard SKU load balancer '
                         '(Basic SKU load balancers and VMs without one have none).',
                         code='no_loadbalancer', status=status, body=detail)
    if status == 404 and any(marker in lowered for marker in _LB_TRANSIENT_404):
        return ImdsError('The load balancer metadata API is temporarily unavailable (HTTP 404: %s).' % detail,
                         code='loadbalancer_unavailable', status=status, retryable=True, body=detail)
    if status == 400 and 'api-version' in lowered:
        versions = newest_versions(body)
        hint = (' Newest versions IMDS offers: %s.' % ', '.join(versions)) if versions else ''
        return ImdsError('IMDS does not accept the api_version for %s (HTTP 400: %s).%s Set api_version accordingly.'
                         % (path, detail, hint), code='bad_api_version', status=status, body=detail)
    code, advice = STATUS_ADVICE.get(status, ('http_%d' % status, 'Unexpected answer from IMDS.'))
    message = 'IMDS answered HTTP %d for %s' % (status, path)
    if detail:
        message += ': %s' % detail
    return ImdsError('%s. %s' % (message, advice), code=code, status=status,
                     retryable=status in TRANSIENT_STATUSES, body=detail)


def backoff_delay(attempt, rand=random.random, base=BACKOFF_BASE, cap=BACKOFF_CAP):
    """Delay before retry number ``attempt`` (0-based): capped exponential, full jitter.

    Full jitter spreads concurrent callers on one VM apart, so they do not
    hit the 5 requests per second limit in lock step.
    """
    ceiling = min(cap, base * (2 ** attempt))
    return max(MIN_REQUEST_INTERVAL, ceiling * rand())


def retry_after_seconds(value):
    """Seconds from a Retry-After header given in seconds; None when absent or unusable."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


def read_dmi_chassis_asset_tag(path=DMI_CHASSIS_ASSET_TAG_PATH):
    """The chassis asset tag, or None when DMI cannot be read (containers, some VMs)."""
    try:
        with open(path, 'rb') as handle:
            return handle.read(256).decode('ascii', 'replace').strip()
    except (IOError, OSError):
        return None


def validate_api_version(value):
    if not isinstance(value, str) or not _API_VERSION_PATTERN.match(value):
        raise ImdsError('api_version must look like YYYY-MM-DD, got %r.' % (value,), code='invalid_option')
    return value


def normalize_path(path):
    """``instance/compute`` or ``/metadata/instance/compute`` → ``/metadata/instance/compute``."""
    if not isinstance(path, str):
        raise ImdsError('path must be a string, got %r.' % (path,), code='invalid_option')
    segments = [segment for segment in path.strip().strip('/').split('/') if segment]
    if segments and segments[0] == 'metadata':
        segments = segments[1:]
    if not segments:
        raise ImdsError('path must name an IMDS path such as instance/compute or loadbalancer.', code='invalid_option')
    for segment in segments:
        if segment in ('.', '..') or not _PATH_SEGMENT_PATTERN.match(segment):
            raise ImdsError('path %r has an invalid segment %r; use letters, digits, "_", "-" and "/" only.'
                            % (path, segment), code='invalid_option')
    return '/metadata/' + '/'.join(segments)


def parse_endpoint(endpoint):
    """Split an http:// endpoint into host, port and base path."""
    match = _ENDPOINT_PATTERN.match(endpoint.strip()) if isinstance(endpoint, str) else None
    if not match:
        raise ImdsError('endpoint must be a plain http://host[:port] URL (IMDS does not use TLS), got %r.'
                        % (endpoint,), code='invalid_option')
    host, port, base = match.groups()
    if host.startswith('['):
        host = host[1:-1]
    port = int(port) if port else 80
    if not 0 < port < 65536:
        raise ImdsError('endpoint port must be 1-65535, got %d.' % port, code='invalid_option')
    return host, port, (base or '').rstrip('/')


class ImdsClient(object):
    """Fetches IMDS paths with Azure's rules for headers, rate, retries and errors."""

    def __init__(self, endpoint=None, timeout=DEFAULT_TIMEOUT, retry_timeout=DEFAULT_RETRY_TIMEOUT,
                 clock=time.monotonic, sleep=time.sleep, rand=random.random,
                 dmi_path=None):
        if timeout is None or timeout <= 0:
            raise ImdsError('timeout must be a positive number of seconds.', code='invalid_option')
        if retry_timeout is None or retry_timeout < 0:
            raise ImdsError('retry_timeout must be zero or a positive number of seconds.', code='invalid_option')
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
        self._dmi_says_azure = None
        self._detected = False
        self._last_request_at = None

    # -- public API ---------------------------------------------------------

    def get_json(self, path, api_version=None):
        """GET a path and return the decoded JSON document."""
        body = self.get(path, api_version=api_version, fmt='json')
        try:
            document = json.loads(body.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ImdsError('IMDS answered %s with a body that is not valid JSON (%s): %s'
                            % (normalize_path(path), exc, _short(body.decode('utf-8', 'replace'), 120)),
                            code='invalid_json')
        except RecursionError:
            raise _too_deep(path)
        if json_depth_exceeds(document, MAX_JSON_DEPTH):
            raise _too_deep(path)
        return document

    def get_text(self, path, api_version=None):
        """GET a leaf path with format=text and return the text."""
        return self.get(path, api_version=api_version, fmt='text').decode('utf-8', 'replace')

    def get(self, path, api_version=None, fmt='json'):
        """GET a path, retrying transient failures; returns the raw body bytes."""
        full_path = normalize_path(path)
        params = []
        if api_version is not None:
            params.append(('api-version', validate_api_version(api_version)))
        if fmt == 'text':
            params.append(('format', 'text'))
        target = self.base_path + full_path
        if params:
            target += '?' + '&'.join('%s=%s' % (_quote(name), _quote(value)) for name, value in params)

        self._check_dmi()
        started = self.clock()
        retry = 0
        while True:
            try:
                return self._request_once(full_path, target, fmt)
            except ImdsError as exc:
                if not exc.retryable:
                    raise
                delay = backoff_delay(retry, self.rand)
                if exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                elapsed = self.clock() - started
                remaining = self.retry_timeout - elapsed
                if remaining <= 0 or (exc.retry_after is not None and exc.retry_after > remaining):
                    raise ImdsError('%s Gave up after %d attempt(s) over %.1f s (retry_timeout is %.0f s).'
                                    % (exc.message, self.attempts, elapsed, self.retry_timeout),
                                    code=exc.code, status=exc.status, body=exc.body)
                # The last attempt goes out when the budget ends rather than giving up early.
                delay = min(delay, remaining)
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
        self._dmi_says_azure = tag == AZURE_CHASSIS_ASSET_TAG
        if not self._dmi_says_azure:
            raise NotAzureError('This host is not an Azure VM: its DMI chassis asset tag is %r, not the one every '
                                'Azure VM has. No request was sent.' % _short(tag, 60))

    def _pace(self):
        """Keep this client's own requests at or below 5 per second."""
        now = self.clock()
        if self._last_request_at is not None:
            wait = self._last_request_at + MIN_REQUEST_INTERVAL - now
            if wait > 0:
                self.sleep(wait)
                now = self.clock()
        self._last_request_at = now

    def _request_once(self, path, target, fmt):
        self._pace()
        self.attempts += 1
        deadline = self.clock() + self.timeout
        connection = http_client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self._connect(connection)
            connection.sock = _DeadlineSocket(connection.sock, deadline, self.clock)
            try:
                connection.putrequest('GET', target, skip_accept_encoding=True)
                connection.putheader('Metadata', 'true')
                connection.putheader('User-Agent', USER_AGENT)
                connection.endheaders()
                response = connection.getresponse()
                body = self._read_body(response, path)
            except socket.timeout:
                raise ImdsError('IMDS at %s did not answer %s within %.1f s (timeout). Raise timeout if IMDS is slow '
                                'on this VM.' % (self.endpoint, path, self.timeout), code='timeout')
            except http_client.IncompleteRead:
                raise _truncated(path)
            except (ConnectionResetError, BrokenPipeError, http_client.RemoteDisconnected) as exc:
                raise ImdsError('IMDS closed the connection for %s before answering (%s).' % (path, _os_error(exc)),
                                code='connection_reset', retryable=True)
            except http_client.HTTPException as exc:
                raise ImdsError('IMDS sent an answer for %s that is not valid HTTP (%s).' % (path, exc.__class__.__name__),
                                code='bad_http')
            except OSError as exc:
                raise ImdsError('Request to IMDS at %s for %s failed: %s.' % (self.endpoint, path, _os_error(exc)),
                                code='connection_error')
        finally:
            connection.close()

        if response.status != 200:
            error = classify_error(response.status, body, path)
            error.retry_after = retry_after_seconds(response.getheader('Retry-After'))
            raise error
        _check_content_type(response.getheader('Content-Type'), fmt, path)
        return body

    def _connect(self, connection):
        try:
            connection.connect()
        except socket.timeout:
            if self.detect and not self._dmi_says_azure:
                raise NotAzureError('No Azure IMDS here: %s did not accept a connection within %.1f s and DMI does '
                                    'not identify an Azure VM.' % (self.endpoint, self.timeout))
            raise ImdsError('IMDS at %s did not accept a connection within %.1f s (timeout).'
                            % (self.endpoint, self.timeout), code='timeout')
        except OSError as exc:
            # EINVAL, EACCES and EPERM are what blackhole and prohibit routes and firewall
            # rules give: hosts often fence off 169.254.169.254 that way when they are not on Azure.
            unreachable = exc.errno in (errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH,
                                        errno.EADDRNOTAVAIL, errno.ENETDOWN, errno.EHOSTDOWN,
                                        errno.EINVAL, errno.EACCES, errno.EPERM)
            if self.detect and unreachable and not self._dmi_says_azure:
                raise NotAzureError('No Azure IMDS here: %s is unreachable (%s), so this host is not an Azure VM.'
                                    % (self.endpoint, _os_error(exc)))
            if exc.errno in (errno.ECONNRESET,):
                raise ImdsError('IMDS at %s reset the connection (%s).' % (self.endpoint, _os_error(exc)),
                                code='connection_reset', retryable=True)
            raise ImdsError('Cannot connect to IMDS at %s: %s. Check the endpoint option and that the service there '
                            'is running.' % (self.endpoint, _os_error(exc)), code='unreachable')

    @staticmethod
    def _read_body(response, path):
        """Read at most MAX_BODY_BYTES; the socket's deadline bounds the time."""
        declared = response.getheader('Content-Length')
        if declared is not None and declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
            raise _too_large(path, int(declared))
        chunks = []
        received = 0
        while True:
            chunk = response.read1(65536)
            if not chunk:
                break
            received += len(chunk)
            if received > MAX_BODY_BYTES:
                raise _too_large(path, received)
            chunks.append(chunk)
        if declared is not None and declared.strip().isdigit() and received < int(declared):
            raise _truncated(path)
        return b''.join(chunks)


class _DeadlineSocket(object):
    """A connected socket whose reads, through makefile(), all stop at one deadline.

    A plain socket timeout applies to each read on its own, so a server that
    sends its headers or body a byte at a time could hold a request far longer
    than ``timeout``; here all reads of one request share the same deadline.
    Everything else is passed through to the socket.
    """

    def __init__(self, sock, deadline, clock):
        self._sock = sock
        self._deadline = deadline
        self._clock = clock

    def makefile(self, mode='rb', buffering=None, **_kwargs):
        # The socket's own raw reader keeps the descriptor open after http.client
        # closes the connection object, until the response is read.
        raw = _DeadlineReader(self._sock, self._sock.makefile('rb', buffering=0), self._deadline, self._clock)
        return io.BufferedReader(raw, buffer_size=buffering or io.DEFAULT_BUFFER_SIZE)

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _DeadlineReader(io.RawIOBase):
    """Raw reader that gives every read only the time left before the deadline."""

    def __init__(self, sock, raw, deadline, clock):
        super(_DeadlineReader, self).__init__()
        self._sock = sock
        self._raw = raw
        self._deadline = deadline
        self._clock = clock

    def readable(self):
        return True

    def readinto(self, buffer):
        remaining = self._deadline - self._clock()
        if remaining <= 0:
            raise socket.timeout('timed out')
        self._sock.settimeout(remaining)
        return self._raw.readinto(buffer)

    def close(self):
        self._raw.close()
        super(_DeadlineReader, self).close()


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


def _quote(value):
    return ''.join(char if char.isalnum() or char in '-_.~' else '%%%02X' % ord(char) for char in str(value))


def _os_error(exc):
    return getattr(exc, 'strerror', None) or exc.__class__.__name__


def _truncated(path):
    return ImdsError('IMDS closed the connection before the whole answer for %s arrived (truncated body).' % path,
                     code='truncated')


def _too_deep(path):
    return ImdsError('IMDS answered %s with JSON nested deeper than %d levels; that is not an IMDS document.'
                     % (normalize_path(path), MAX_JSON_DEPTH), code='invalid_json')


def _too_large(path, size):
    return ImdsError('IMDS answer for %s is larger than the %d byte limit (%d bytes); refusing to read it.'
                     % (path, MAX_BODY_BYTES, size), code='too_large')


def _check_content_type(content_type, fmt, path):
    media_type = (content_type or '').split(';')[0].strip().lower()
    expected = 'application/json' if fmt == 'json' else 'text/plain'
    if media_type != expected:
        raise ImdsError('IMDS answered %s with content type %r, expected %s; the endpoint may not be IMDS '
                        '(a proxy or captive portal?).' % (path, content_type or '', expected), code='bad_content_type')


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
