# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What went wrong with an IMDS request, what the user can do, and whether to retry.

The client in _imds.py imports this module only when something fails (see
"Module load time" in CONTRIBUTING.md).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import math
import socket

from ansible_collections.imds.azure.plugins.module_utils._imds import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    MIN_REQUEST_INTERVAL,
    ImdsError,
    normalize_path,
    os_error_text,
    short_text,
    shown,
)

# Every error_code a module of the collection can fail with, and what it means.
# docs/troubleshooting.md explains each one (a unit test keeps the two in step);
# http_<status> stands for any HTTP status IMDS does not document.
ERROR_CODES = {
    'bad_request': 'IMDS answered 400: the request was malformed or altered on the way.',
    'bad_api_version': 'IMDS answered 400 about the api-version: it does not accept the one asked for.',
    'not_found': 'IMDS answered 404 (not the "no load balancer" answer): no such path for this api-version.',
    'no_loadbalancer': 'IMDS answered that the VM is in no Standard load balancer backend pool (metadata_info only).',
    'loadbalancer_unavailable': 'IMDS answered one of the transient 404s of the load balancer endpoint, until the '
                                'retry budget ran out.',
    'method_not_allowed': 'IMDS answered 405: the request was altered on the way.',
    'gone': 'IMDS answered 410 (still starting) until the retry budget ran out.',
    'throttled': 'IMDS answered 429 (over 5 requests a second) until the retry budget ran out.',
    'server_error': 'IMDS answered 500 until the retry budget ran out.',
    'unavailable': 'IMDS answered 503 until the retry budget ran out.',
    'http_<status>': 'IMDS answered an HTTP status it does not document.',
    'redirect': 'The answer was a redirect; IMDS never redirects and redirects are never followed.',
    'not_azure': 'The host is not an Azure VM (every module but loadbalancer_facts).',
    'unreachable': 'No connection could be opened to the endpoint.',
    'timeout': 'One attempt did not complete within timeout.',
    'connection_reset': 'The connection was reset before an answer, until the retry budget ran out.',
    'connection_error': 'The connection failed after it was opened, in a way other than a reset or a timeout.',
    'bad_http': 'The answer was not valid HTTP.',
    'truncated': 'The body was shorter than its declared length.',
    'too_large': 'The body was larger than 1 MiB.',
    'bad_content_type': 'The Content-Type was not the one IMDS sends (application/json, or text/plain for text).',
    'bad_encoding': 'The answer used a Content-Encoding or charset the client does not decode, or text that does '
                    'not decode in its charset.',
    'invalid_json': 'The body was not JSON, or nested deeper than 64 levels.',
    'invalid_metadata': 'The load balancer or scheduled events document held a value that cannot be trusted.',
    'post_not_allowed': 'A POST to a path other than scheduledevents was refused; nothing was sent.',
    'empty_answer': 'The load balancer document held none of the lists that say what the load balancer sends.',
    'invalid_option': 'A module option was invalid; no request was sent.',
    'internal_error': 'An unexpected error inside the module; the message names it.',
}

_LB_NO_METADATA = 'no load balancer metadata is found'
_LB_TRANSIENT_404 = ("isn't available right now", 'is not available right now', "isn't currently available",
                     'is not currently available')

TRANSIENT_STATUSES = (410, 429, 500, 503)

# What each documented status means for the user: (short code, explanation and advice).
STATUS_ADVICE = {
    400: ('bad_request', 'IMDS rejected the request as malformed. A proxy or middlebox may have altered it, '
                         'or the api_version or format is not accepted for this path.'),
    404: ('not_found', 'IMDS has no such path. Check the path and api_version options.'),
    405: ('method_not_allowed', 'IMDS allows only GET, and POST to approve scheduled events; something between '
                                'this host and IMDS changed the request.'),
    410: ('gone', 'IMDS is not ready yet (Azure advises retrying for up to 70 seconds). '
                  'Raise retry_timeout if this persists while the VM starts.'),
    429: ('throttled', 'IMDS throttled the requests: more than 5 per second came from this VM. '
                       'Reduce concurrent IMDS callers on the VM or raise retry_timeout.'),
    500: ('server_error', 'IMDS had an internal error. Retry later.'),
    503: ('unavailable', 'Azure reports a temporary outage of IMDS on this VM.'),
}


# 304 Not Modified and 300 Multiple Choices point nowhere: not redirects.
REDIRECT_STATUSES = (301, 302, 303, 305, 307, 308)


def sentence(text):
    """text ending in exactly one full stop (or other closing mark)."""
    text = text.rstrip()
    return text if text.endswith(('.', '!', '?')) else text + '.'


def seconds_text(seconds):
    """0.5 -> '0.5', 70.0 -> '70': a number of seconds as the user wrote it."""
    return '%g' % seconds


def parsed_json(body):
    """The JSON document in an error body, or None: error bodies get no depth limit of their own from the parser."""
    if isinstance(body, bytes):
        body = body.decode('utf-8', 'replace')
    try:
        return json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return None


def imds_error_message(parsed):
    """The "error" member of an IMDS error body; None when the body is not one."""
    if isinstance(parsed, dict) and isinstance(parsed.get('error'), str):
        return parsed['error']
    return None


def imds_says(body, parsed, content_type):
    """What IMDS itself said in an error answer, in lower case: the "error" member of its JSON body, or a plain
    text body. An HTML page (a proxy's, a captive portal's) says nothing, whatever words it contains."""
    message = imds_error_message(parsed)
    if message is None and parsed is None and body:
        text = body.decode('utf-8', 'replace') if isinstance(body, bytes) else body
        media_type = (content_type or '').split(';')[0].strip().lower()
        if media_type in ('', 'text/plain', 'application/json') and not text.lstrip().startswith('<'):
            message = text
    return (message or '')[:1000].lower()


def error_text(body, parsed):
    """The human part of an error answer: IMDS's "error" member, or the text itself, on one capped line."""
    if not body:
        return ''
    message = imds_error_message(parsed)
    if message is not None:
        return short_text(message)
    return short_text(body.decode('utf-8', 'replace') if isinstance(body, bytes) else body)


def newest_versions(parsed):
    """The api-versions IMDS suggests in a 400 answer, if it listed any (at most five, each capped)."""
    versions = parsed.get('newest-versions') if isinstance(parsed, dict) else None
    if isinstance(versions, list):
        return [short_text(v, 20) for v in versions if isinstance(v, str)][:5]
    return []


def classify_error(status, body, path, content_type=None):
    """Turn a non-200 answer into an ImdsError that says what happened and what to do."""
    parsed = parsed_json(body)
    detail = error_text(body, parsed)
    said = imds_says(body, parsed, content_type)
    if status in REDIRECT_STATUSES:
        return ImdsError('IMDS answered %s with a redirect (HTTP %d); redirects are never followed because IMDS does '
                         'not redirect. Check the endpoint option.' % (path, status), code='redirect', status=status)
    if status == 404 and _LB_NO_METADATA in said:
        return ImdsError('No load balancer metadata: this VM is not in the backend pool of a Standard SKU load balancer '
                         '(Basic SKU load balancers and VMs without one have none).',
                         code='no_loadbalancer', status=status, body=detail)
    if status == 404 and any(marker in said for marker in _LB_TRANSIENT_404):
        return ImdsError('The load balancer metadata API is temporarily unavailable (HTTP 404: %s).' % detail,
                         code='loadbalancer_unavailable', status=status, retryable=True, body=detail)
    if status == 400 and 'api-version' in detail.lower():
        versions = newest_versions(parsed)
        hint = (' Newest versions IMDS offers: %s.' % ', '.join(versions)) if versions else ''
        return ImdsError('IMDS does not accept the api_version for %s (HTTP 400: %s).%s Set api_version accordingly.'
                         % (path, detail, hint), code='bad_api_version', status=status, body=detail)
    code, advice = STATUS_ADVICE.get(status, ('http_%d' % status, 'Unexpected answer from IMDS.'))
    message = 'IMDS answered HTTP %d for %s' % (status, path)
    if detail:
        message += ': %s' % detail
    return ImdsError('%s %s' % (sentence(message), advice), code=code, status=status,
                     retryable=status in TRANSIENT_STATUSES, body=detail)


def status_failure(response, body, path):
    """The ImdsError for an answer other than 200, with the Retry-After IMDS asked for."""
    error = classify_error(response.status, body, path, response.getheader('Content-Type'))
    error.retry_after = retry_after_seconds(response.getheader('Retry-After'))
    return error


def retry_after_seconds(value):
    """Seconds from a Retry-After header given in seconds (any size); None when absent or unusable.

    One rule whatever the number: retry_delay gives up at once when it asks
    for more than the retry budget has left.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip()[:40])
    except ValueError:
        return None
    return seconds if seconds >= 0 and not math.isnan(seconds) else None


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
        waited = (' IMDS asked to wait %s s (Retry-After), longer than the budget has left.'
                  % seconds_text(error.retry_after)) if error.retry_after is not None and remaining > 0 else ''
        raise ImdsError('%s%s Gave up after %d attempt(s) over %.1f s (retry_timeout is %s s).'
                        % (sentence(error.message), waited, attempts, elapsed, seconds_text(retry_timeout)),
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
                     % (path, short_text(str(exc), 160), short_text(body[:1000].decode('utf-8', 'replace'), 120)),
                     code='invalid_json')


def wrong_content_type(path, content_type, expected):
    return ImdsError('IMDS answered %s with content type %s, expected %s; the endpoint may not be IMDS (a proxy or '
                     'captive portal?).' % (path, shown(content_type or ''), expected), code='bad_content_type')


def unsupported_encoding(path, encoding):
    return ImdsError('IMDS answered %s with Content-Encoding %s, which the client does not decode (IMDS sends plain '
                     'bodies); the endpoint may not be IMDS.' % (path, shown(encoding)), code='bad_encoding')


def unknown_charset(path, charset):
    return ImdsError('IMDS answered %s in charset %s, which Python cannot decode here; the endpoint may not be IMDS.'
                     % (normalize_path(path), shown(charset)), code='bad_encoding')


def undecodable_text(path, charset, exc):
    return ImdsError('IMDS answered %s with text that is not valid %s (%s); the endpoint may not be IMDS.'
                     % (path, shown(charset), exc.reason), code='bad_encoding')


def invalid_metadata(exc):
    """The ImdsError for a load balancer document the normalisers refused (LoadBalancerDataError)."""
    return ImdsError('IMDS returned load balancer metadata that cannot be used: %s' % sentence(str(exc)),
                     code=exc.code)


def unexpected(exc):
    """The ImdsError for an exception nothing else turned into one: never a traceback, always an error_code."""
    return ImdsError('Unexpected error while reading IMDS (%s): %s' % (exc.__class__.__name__, short_text(str(exc), 200)),
                     code='internal_error')


def fail_module(module, exc, client):
    """fail_json for any exception of a module's read, with the keys every failure has."""
    error = exc if isinstance(exc, ImdsError) else unexpected(exc)
    usage = client.usage() if client is not None else {}
    module.fail_json(msg=error.message, error_code=error.code, status=error.status, **usage)
