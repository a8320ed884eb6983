# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Benchmark reference (benchmarks/large_answer.py): the floor for any module
# that returns this answer, an AnsibleModule that reads it with http.client and
# returns the parsed document as it came, without checking anything.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
from http import client
from ansible.module_utils.basic import AnsibleModule
module = AnsibleModule(argument_spec=dict(endpoint=dict(type='str'), retry_timeout=dict(type='float')))
host, port = module.params['endpoint'][len('http://'):].split(':')
connection = client.HTTPConnection(host, int(port), timeout=30)
connection.request('GET', '/metadata/loadbalancer?api-version=2020-10-01', headers={'Metadata': 'true'})
document = json.loads(connection.getresponse().read().decode('utf-8'))
module.exit_json(changed=False, ansible_facts={'azure_loadbalancer_document': document})
