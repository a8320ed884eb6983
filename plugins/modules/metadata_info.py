#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: metadata_info
short_description: Read any path of the Azure Instance Metadata Service
version_added: 0.1.0
description:
  - Reads one path of the Azure Instance Metadata Service (IMDS) on the managed host, such as C(instance),
    C(instance/compute), C(instance/network), C(loadbalancer) or C(versions), and returns it under C(metadata).
  - Uses the same client as M(imds.azure.loadbalancer_facts), with the same rules for headers, proxies,
    rate limit, retries and errors.
  - Unlike M(imds.azure.loadbalancer_facts), a host that is not an Azure VM makes this module fail.
author:
  - imds.azure maintainers (@imds-azure)
extends_documentation_fragment:
  - imds.azure.imds
  - imds.azure.imds.ATTRIBUTES
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads IMDS.
  diff_mode:
    support: none
options:
  path:
    description:
      - IMDS path below C(/metadata/), for example C(instance/compute) or C(instance/compute/vmId).
        A leading C(/metadata/) is accepted too.
      - Letters, digits, C(_), C(-), C(.) and C(/) only.
    type: str
    required: true
  format:
    description:
      - C(json) returns the parsed JSON document.
      - C(text) returns the text of a leaf value, such as C(instance/compute/vmId); IMDS requires it for leaves.
    type: str
    choices: [json, text]
    default: json
  api_version:
    description:
      - IMDS C(api-version) to ask for, C(YYYY-MM-DD). Not sent for the C(versions) path, which needs none.
    type: str
    default: '2021-02-01'
seealso:
  - module: imds.azure.loadbalancer_facts
  - name: Azure Instance Metadata Service
    description: Microsoft's description of the paths and versions of IMDS.
    link: https://learn.microsoft.com/azure/virtual-machines/instance-metadata-service
'''

EXAMPLES = r'''
- name: Read the compute metadata of this VM
  imds.azure.metadata_info:
    path: instance/compute
  register: compute

- name: Show the VM name and, on a scale-set instance, its scale set
  ansible.builtin.debug:
    msg: "{{ compute.metadata.name }} in {{ compute.metadata.vmScaleSetName | default('no scale set', true) }}"

- name: Read one value as text
  imds.azure.metadata_info:
    path: instance/compute/vmId
    format: text
  register: vm_id

- name: List the api-versions IMDS supports
  imds.azure.metadata_info:
    path: versions
  register: versions

- name: Read the private IPv4 addresses of the first network interface
  imds.azure.metadata_info:
    path: instance/network/interface/0/ipv4/ipAddress
  register: addresses
'''

RETURN = r'''
metadata:
  description:
    - The answer of IMDS for I(path).
    - A dictionary or list for C(format=json), a string for C(format=text).
  returned: success
  type: raw
  sample: {"location": "westeurope", "name": "web-0", "vmScaleSetName": "web", "zone": "1"}
path:
  description: The full IMDS path that was read.
  returned: success
  type: str
  sample: /metadata/instance/compute
api_version:
  description: The api-version that was sent, or null for C(versions).
  returned: success
  type: str
  sample: '2021-02-01'
error_code:
  description:
    - What went wrong, as one word, to test in C(failed_when) or C(until).
    - For example C(not_found) (no such path), C(bad_request) (for example a leaf read with
        C(format=json)), C(throttled), C(timeout), C(not_azure).
    - C(docs/troubleshooting.md) in the collection explains every code and what to do about it.
  returned: failure
  type: str
  sample: timeout
status:
  description: The HTTP status of the IMDS answer the module failed on; null when there was no answer.
  returned: failure
  type: int
  sample: 503
imds_requests:
  description:
    - How many requests the read sent to IMDS, retries included (a connection attempt counts as one).
    - C(0) when the module failed before sending any, for example on an invalid option or a host that DMI says is
      not an Azure VM.
  returned: always
  type: int
  sample: 1
imds_seconds:
  description: Seconds the read spent on IMDS, waits between retries included.
  returned: always
  type: float
  sample: 0.012
'''

from ansible_collections.imds.azure.plugins.module_utils._imds import (
    imds_argument_spec,
    normalize_path,
)
from ansible_collections.imds.azure.plugins.module_utils._imds_module import ImdsModule, run_module

INSTANCE_API_VERSION = '2021-02-01'
# The one IMDS path that takes no api-version.
VERSIONS_PATH = '/metadata/versions'


def read_metadata(client, path, fmt, api_version):
    """Return (full path, api-version sent, metadata) for one IMDS path."""
    full_path = normalize_path(path)
    if full_path == VERSIONS_PATH:
        api_version = None
    if fmt == 'text':
        return full_path, api_version, client.get_text(full_path, api_version=api_version)
    return full_path, api_version, client.get_json(full_path, api_version=api_version)


def main():
    argument_spec = imds_argument_spec(INSTANCE_API_VERSION)
    argument_spec.update(
        path=dict(type='str', required=True),
        format=dict(type='str', choices=['json', 'text'], default='json'),
    )
    module = ImdsModule(argument_spec=argument_spec, supports_check_mode=True)

    def read(client):
        full_path, api_version, metadata = read_metadata(
            client, module.params['path'], module.params['format'], module.params['api_version'])
        return {'metadata': metadata, 'path': full_path, 'api_version': api_version}

    run_module(module, read)


if __name__ == '__main__':
    main()
