# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What went wrong with an IMDS request, what the user can do, and whether to retry.

The client in _imds.py imports this module only when something fails: a
module run that gets its answer at the first attempt never loads or compiles
it, and every run on every host pays for what it loads.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import socket

from ansible_collections.imds.azure.plugins.module_utils._imds import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    MIN_REQUEST_INTERVAL,
    ImdsError,
    os_error_text,
    short_text,
)

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


def error_text(body):
    """The human part of an IMDS error body: its "error" member, or the text itself."""
    if not body:
        return ''
    if isinstance(body, bytes):
        body = body.decode('utf-8', 'replace')
    try:
        parsed = json.loads(body)
    except ValueError:
        return short_text(body)
    if isinstance(parsed, dict) and isinstance(parsed.get('error'), str):
        return short_text(parsed['error'])
    return short_text(body)


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


def status_failure(response, body, path):
    """The ImdsError for an answer other than 200, with the Retry-After IMDS asked for."""
    error = classify_error(response.status, body, path)
    error.retry_after = retry_after_seconds(response.getheader('Retry-After'))
    return error


def retry_after_seconds(value):
    """Seconds from a Retry-After header given in seconds; None when absent or unusable."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


def backoff_delay(attempt, rand, base=BACKOFF_BASE, cap=BACKOFF_CAP):
    """Delay before retry number ``attempt`` (0-based): capped exponential, full jitter.

    Full jitter spreads concurrent callers on one VM apart, so they do not
    hit the 5 requests per second limit in lock step.
    """
    ceiling = min(cap, base * (2 ** attempt))
    return max(MIN_REQUEST_INTERVAL, ceiling * rand())


def retry_delay(error, retry, rand, elapsed, retry_timeout, attempts):
    """Seconds to wait before retrying after the retryable ``error``; raises the final error when the budget is spent.

    The last attempt goes out when the budget ends rather than giving up early.
    """
    delay = backoff_delay(retry, rand)
    if error.retry_after is not None:
        delay = max(delay, error.retry_after)
    remaining = retry_timeout - elapsed
    if remaining <= 0 or (error.retry_after is not None and error.retry_after > remaining):
        raise ImdsError('%s Gave up after %d attempt(s) over %.1f s (retry_timeout is %.0f s).'
                        % (error.message, attempts, elapsed, retry_timeout),
                        code=error.code, status=error.status, body=error.body)
    return min(delay, remaining)


def transport_failure(exc, client, path):
    """The ImdsError for a request that broke off after the connection was open."""
    from http import client as http_client  # loaded already: the request went through it

    if isinstance(exc, socket.timeout):
        return ImdsError('IMDS at %s did not answer %s within %.1f s (timeout). Raise timeout if IMDS is slow on this '
                         'VM.' % (client.endpoint, path, client.timeout), code='timeout')
    if isinstance(exc, http_client.IncompleteRead):
        return truncated(path)
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return ImdsError('IMDS closed the connection for %s before answering (%s).' % (path, os_error_text(exc)),
                         code='connection_reset', retryable=True)
    if isinstance(exc, http_client.HTTPException):
        return ImdsError('IMDS sent an answer for %s that is not valid HTTP (%s).' % (path, exc.__class__.__name__),
                         code='bad_http')
    return ImdsError('Request to IMDS at %s for %s failed: %s.' % (client.endpoint, path, os_error_text(exc)),
                     code='connection_error')


def truncated(path):
    return ImdsError('IMDS closed the connection before the whole answer for %s arrived (truncated body).' % path,
                     code='truncated')


def too_large(path, size):
    return ImdsError('IMDS answer for %s is larger than the %d byte limit (%d bytes); refusing to read it.'
                     % (path, MAX_BODY_BYTES, size), code='too_large')


def too_deep(path):
    return ImdsError('IMDS answered %s with JSON nested deeper than %d levels; that is not an IMDS document.'
                     % (path, MAX_JSON_DEPTH), code='invalid_json')


def invalid_json(path, body, exc):
    return ImdsError('IMDS answered %s with a body that is not valid JSON (%s): %s'
                     % (path, exc, short_text(body.decode('utf-8', 'replace'), 120)), code='invalid_json')


def wrong_content_type(path, content_type, expected):
    return ImdsError('IMDS answered %s with content type %r, expected %s; the endpoint may not be IMDS (a proxy or '
                     'captive portal?).' % (path, content_type or '', expected), code='bad_content_type')
