# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The HTTP exchange of one IMDS request, over a connection the client has opened.

Loaded by the client only once a connection is open (see "Module load time"
in CONTRIBUTING.md).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import io
import socket
from http import client as http_client

from ansible_collections.imds.azure.plugins.module_utils._imds import (
    MAX_BODY_BYTES,
    failures,
)

USER_AGENT = 'imds.azure-ansible'
MEDIA_TYPES = {'json': 'application/json', 'text': 'text/plain'}


# More informational (1xx) answers than this before the final one is not HTTP from IMDS.
MAX_INFORMATIONAL = 8


def exchange(client, sock, path, target, fmt, deadline, document=None):
    """GET ``target`` (or POST the JSON bytes ``document``) on the connected ``sock``.

    Returns (body, charset) of a 200 answer of the expected media type; the
    empty 200 answer IMDS gives a POST has none to check. Every read stops at
    ``deadline``; failures raise ImdsError (see _imds_failures.py).
    """
    connection = http_client.HTTPConnection(client.host, client.port, timeout=client.timeout)
    connection.sock = _DeadlineSocket(sock, deadline, client.clock)
    connection.response_class = _FinalResponse
    try:
        try:
            connection.putrequest('GET' if document is None else 'POST', target, skip_accept_encoding=True)
            connection.putheader('Metadata', 'true')
            connection.putheader('User-Agent', USER_AGENT)
            if document is not None:
                connection.putheader('Content-Type', MEDIA_TYPES['json'])
                connection.putheader('Content-Length', str(len(document)))
            connection.endheaders(document)
            response = connection.getresponse()
            body = _read_body(response, path)
        except (OSError, http_client.HTTPException) as exc:
            raise failures().transport_failure(exc, client, path)
    finally:
        connection.close()

    if response.status != 200:
        raise failures().status_failure(response, body, path)
    if document is not None and not body:
        return body, None
    media_type, charset = _media_type(response.getheader('Content-Type'))
    if media_type != MEDIA_TYPES[fmt]:
        raise failures().wrong_content_type(path, response.getheader('Content-Type'), MEDIA_TYPES[fmt])
    encoding = (response.getheader('Content-Encoding') or 'identity').strip().lower()
    if encoding != 'identity':
        raise failures().unsupported_encoding(path, response.getheader('Content-Encoding'))
    return body, charset


def _media_type(content_type):
    """('application/json', 'utf-8') from 'application/json; charset=utf-8'; charset None when not named."""
    parts = (content_type or '').split(';')
    charset = None
    for parameter in parts[1:]:
        name, _equals, value = parameter.partition('=')
        if name.strip().lower() == 'charset':
            charset = value.strip().strip('"').strip() or None
    return parts[0].strip().lower(), charset


def _read_body(response, path):
    """Read at most MAX_BODY_BYTES; the socket's deadline bounds the time.

    The declared length is the one http.client itself framed the body with
    (it also accepts forms such as "+40" or a repeated header), so "shorter
    than declared" means what http.client read, not a second parse of the header.
    """
    declared = None if response.chunked else response.length
    if declared is not None and declared > MAX_BODY_BYTES:
        raise failures().too_large(path, declared)
    chunks = []
    received = 0
    while True:
        chunk = response.read1(65536)
        if not chunk:
            break
        received += len(chunk)
        if received > MAX_BODY_BYTES:
            raise failures().too_large(path, received)
        chunks.append(chunk)
    if declared is not None and received < declared:
        raise failures().truncated(path)
    return b''.join(chunks)


class _FinalResponse(http_client.HTTPResponse):
    """An HTTP response that skips every informational (1xx) answer, as HTTP says, not only 100 Continue.

    101 Switching Protocols is final: the client never asks to switch, so it
    is reported like any other unexpected status.
    """

    def _read_status(self):
        for _informational in range(MAX_INFORMATIONAL):
            version, status, reason = super(_FinalResponse, self)._read_status()
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            http_client.parse_headers(self.fp)  # the informational answer's own headers
        raise http_client.HTTPException('more than %d informational answers' % MAX_INFORMATIONAL)


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
