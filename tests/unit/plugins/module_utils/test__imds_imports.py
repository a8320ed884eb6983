# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the client loads on each path, checked in a fresh interpreter.

Every module run on every host compiles what it imports, so a successful
request must not load the failure handling, a host that is not an Azure VM
must load neither the HTTP exchange (with http.client) nor the failure
handling, and loadbalancer_facts loads the normalisers only once it has a
document to normalise. The scheduled events code is loaded by its own
modules only, and they load neither the load balancer normalisers nor, on
success, the failure handling.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.tests.unit.utils.imds_server import Answer

# The directory that holds ansible_collections/, so that a new interpreter finds the collection.
COLLECTIONS_ROOT = os.path.abspath(os.path.join(os.path.dirname(_imds.__file__), *[os.pardir] * 5))
MODULE_UTILS = 'ansible_collections.imds.azure.plugins.module_utils.'
FAILURES = MODULE_UTILS + '_imds_failures'
HTTP = MODULE_UTILS + '_imds_http'
NORMALISERS = MODULE_UTILS + '_loadbalancer'
SCHEDULED_EVENTS = MODULE_UTILS + '_scheduled_events'
WATCHED = ('http.client', 'ssl', 'email.parser', FAILURES, HTTP, NORMALISERS, SCHEDULED_EVENTS)

PROBE = '''
import json, sys
from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.plugins.modules import loadbalancer_facts
endpoint, default_endpoint, dmi_path = sys.argv[1:4]
if default_endpoint:
    _imds.DEFAULT_ENDPOINT = default_endpoint
client = _imds.ImdsClient(endpoint=endpoint or None, retry_timeout=0, dmi_path=dmi_path or None)
try:
    facts = loadbalancer_facts.gather_loadbalancer_facts(client, '2020-10-01')
    result = facts.get('reason') or 'available'
except _imds.ImdsError as exc:
    result = exc.code
print(json.dumps({'result': result, 'loaded': sorted(name for name in sys.modules if name in %r)}))
''' % (WATCHED,)


EVENTS_PROBE = '''
import json, sys
from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.plugins.module_utils._scheduled_events import read_scheduled_events
from ansible_collections.imds.azure.plugins.modules import scheduled_event_approve, scheduled_events_info
client = _imds.ImdsClient(endpoint=sys.argv[1], retry_timeout=0)
events = read_scheduled_events(client)['events']
print(json.dumps({'result': len(events), 'loaded': sorted(name for name in sys.modules if name in %r)}))
''' % (WATCHED,)


def probe(endpoint='', default_endpoint='', dmi_path='', script=PROBE):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT)
    done = subprocess.run([sys.executable, '-c', script, endpoint, default_endpoint, dmi_path],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_successful_request_never_loads_the_failure_handling(server):
    server.queue(Answer.from_fixture('lb_200_documented'))
    seen = probe(endpoint=server.endpoint)
    assert seen['result'] == 'available'
    assert FAILURES not in seen['loaded']
    assert {'http.client', HTTP, NORMALISERS} <= set(seen['loaded'])
    assert SCHEDULED_EVENTS not in seen['loaded']


def test_scheduled_events_modules_load_neither_the_normalisers_nor_on_success_the_failure_handling(server):
    server.queue(Answer.from_fixture('se_200_documented'))
    seen = probe(endpoint=server.endpoint, script=EVENTS_PROBE)
    assert seen['result'] == 1
    assert {'http.client', HTTP, SCHEDULED_EVENTS} <= set(seen['loaded'])
    assert FAILURES not in seen['loaded'] and NORMALISERS not in seen['loaded']


def test_failed_request_loads_the_failure_handling_but_not_the_normalisers(server):
    server.queue(Answer.from_fixture('lb_404_no_metadata'))
    seen = probe(endpoint=server.endpoint)
    assert seen['result'] == 'no_loadbalancer'
    assert FAILURES in seen['loaded']
    assert NORMALISERS not in seen['loaded']


@pytest.mark.parametrize('dmi', ['not-azure', 'missing'])
def test_host_that_is_not_azure_loads_no_http_failure_handling_or_normalisers(tmp_path, closed_port, dmi):
    tag = tmp_path / 'chassis_asset_tag'
    if dmi == 'not-azure':
        tag.write_text('No Asset Tag\n')
    seen = probe(dmi_path=str(tag), default_endpoint='http://127.0.0.1:%d' % closed_port)
    assert seen['result'] == 'not_azure'
    assert seen['loaded'] == []
