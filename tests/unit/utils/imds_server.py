# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A scripted HTTP server on 127.0.0.1 for unit tests of the IMDS client.

Each test queues the answers it wants (from the fixture files of documented
IMDS responses, or special behaviours such as a reset connection) and reads
back what the client sent.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import socket
import struct
import threading
import time

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'fixtures', 'imds_responses')


def load_fixture(name):
    with open(os.path.join(FIXTURES, name + '.json')) as handle:
        return json.load(handle)


def fixture_names(prefix=''):
    return sorted(name[:-5] for name in os.listdir(FIXTURES) if name.startswith(prefix) and name.endswith('.json'))


class Answer(object):
    """One scripted answer: a status with body, or a misbehaviour."""

    def __init__(self, status=200, body=b'', content_type='application/json; charset=utf-8', headers=None,
                 behaviour=None, declared_length=None, drip_interval=0.0, header_drip_interval=0.0, raw=None):
        if not isinstance(body, bytes):
            body = (body if isinstance(body, str) else json.dumps(body)).encode('utf-8')
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.behaviour = behaviour
        self.declared_length = declared_length
        self.drip_interval = drip_interval
        self.header_drip_interval = header_drip_interval
        # Bytes sent as they are instead of a status line, headers and body (for framing tests).
        self.raw = raw

    @classmethod
    def from_fixture(cls, name, **kwargs):
        data = load_fixture(name)
        return cls(status=data['status'], body=data['body'], content_type=data['content_type'], **kwargs)


class ScriptedServer(object):
    """Serves queued answers in order; the last one repeats when the queue runs dry."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(64)
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.endpoint = 'http://127.0.0.1:%d' % self.port
        self.answers = []
        self.requests = []
        self.header_bytes_sent = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def queue(self, *answers):
        with self.lock:
            self.answers.extend(answers)

    def _next_answer(self):
        with self.lock:
            if len(self.answers) > 1:
                return self.answers.pop(0)
            return self.answers[0] if self.answers else Answer(status=500, body=b'no answer queued')

    def _serve(self):
        while not self.stopping.is_set():
            try:
                connection, _address = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _read_request(self, connection):
        connection.settimeout(5)
        data = b''
        while b'\r\n\r\n' not in data:
            chunk = connection.recv(4096)
            if not chunk:
                return None
            data += chunk
        head_bytes, _separator, body = data.partition(b'\r\n\r\n')
        request_line, _ignored, header_block = head_bytes.decode('latin-1').partition('\r\n')
        method, target, _version = request_line.split(' ', 2)
        headers = {}
        for line in header_block.split('\r\n'):
            name, _ignored, value = line.partition(':')
            headers[name.strip().lower()] = value.strip()
        # The body a request declares (a POST), read to its end.
        declared = int(headers.get('content-length') or 0)
        while len(body) < declared:
            chunk = connection.recv(4096)
            if not chunk:
                break
            body += chunk
        return {'method': method, 'target': target, 'headers': headers, 'body': body, 'time': time.monotonic()}

    def _handle(self, connection):
        try:
            request = self._read_request(connection)
            if request is None:
                return
            with self.lock:
                self.requests.append(request)
            answer = self._next_answer()
            if answer.behaviour == 'reset':
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
                return
            if answer.behaviour == 'hang':
                self.stopping.wait(30)
                return
            if answer.raw is not None:
                connection.sendall(answer.raw)
                return
            length = answer.declared_length if answer.declared_length is not None else len(answer.body)
            head = ['HTTP/1.1 %d Scripted' % answer.status, 'Content-Type: %s' % answer.content_type,
                    'Connection: close']
            if answer.behaviour != 'no_length':
                head.append('Content-Length: %d' % length)
            head.extend('%s: %s' % item for item in answer.headers.items())
            head_bytes = ('\r\n'.join(head) + '\r\n\r\n').encode('utf-8')
            if answer.header_drip_interval:
                self._drip(connection, head_bytes, answer.header_drip_interval, count_headers=True)
                return
            connection.sendall(head_bytes)
            if answer.drip_interval:
                self._drip(connection, answer.body, answer.drip_interval)
            else:
                connection.sendall(answer.body)
        except OSError:
            pass
        finally:
            connection.close()

    def _drip(self, connection, data, interval, count_headers=False):
        """Send data one byte at a time until done, the client leaves, or the server stops."""
        for index in range(len(data)):
            if self.stopping.is_set():
                return
            connection.sendall(data[index:index + 1])
            if count_headers:
                self.header_bytes_sent += 1
            time.sleep(interval)

    def stop(self):
        self.stopping.set()
        self.listener.close()
        self.thread.join(2)
