# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""An IMDS client pointed at a ScriptedServer, with a clock that only moves when it sleeps."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.imds.azure.plugins.module_utils._imds import ImdsClient


class FakeTime(object):
    """A clock that only moves when the client sleeps, so retries cost no real time."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def client_for(server, fake_time=None, **kwargs):
    kwargs.setdefault('timeout', 2)
    kwargs.setdefault('retry_timeout', 70)
    if fake_time is not None:
        kwargs.update(clock=fake_time.clock, sleep=fake_time.sleep)
        kwargs.setdefault('rand', lambda: 0.5)
    return ImdsClient(endpoint=server.endpoint, **kwargs)
