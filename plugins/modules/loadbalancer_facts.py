#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: loadbalancer_facts
short_description: Azure Standard Load Balancer frontends and rules of this VM, as facts
version_added: 0.1.0
description:
  - Reads C(/metadata/loadbalancer) from the Azure Instance Metadata Service (IMDS) on the managed host and
    registers what it says as the fact C(azure_loadbalancer) (C(ansible_facts.azure_loadbalancer)).
  - Only VMs and scale-set instances in the backend pool of a B(Standard) SKU load balancer get data. Anywhere
    else the facts say C(available=false) with a reason, and the task still succeeds, so the module can run
    on every host of a mixed fleet, also from C(gather_facts).
  - The answer is normalised whatever the variations of the real service. Protocols are in lower case, ports as
    integers, IP addresses in canonical form, missing or null lists as empty lists, unknown keys ignored.
    An answer that cannot be trusted (malformed JSON, an IP address that does not parse or that no load balancer
    rule can carry, a port out of range, two spellings of one key that disagree) fails the task with
    C(error_code=invalid_metadata), and an answer with none of the lists fails with C(error_code=empty_answer).
    No facts are returned then, so previously known facts are never replaced by partial or empty ones.
  - Gateway Load Balancer tunnel interfaces are reported in C(tunnel_interfaces).
author:
  - imds.azure maintainers (@imds-azure)
extends_documentation_fragment:
  - imds.azure.imds
  - imds.azure.imds.ATTRIBUTES
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
    details: The module only reads IMDS; check mode returns the same facts.
  diff_mode:
    support: none
  facts:
    support: full
options:
  api_version:
    description:
      - IMDS C(api-version) to ask for, C(YYYY-MM-DD).
      - C(2020-10-01) is the version that introduced the load balancer endpoint; later IMDS versions answer it too.
    type: str
    default: '2020-10-01'
seealso:
  - module: imds.azure.metadata_info
  - name: Retrieve load balancer information by using Azure Instance Metadata Service
    description: Microsoft's description of the endpoint this module reads.
    link: https://learn.microsoft.com/azure/load-balancer/howto-load-balancer-imds
'''

EXAMPLES = r'''
- name: Read the load balancer frontends and rules of this VM
  imds.azure.loadbalancer_facts:

- name: Show every frontend IP that points at this VM
  ansible.builtin.debug:
    var: ansible_facts.azure_loadbalancer.frontend_ips

- name: Stop when this host is not behind a Standard Load Balancer
  ansible.builtin.fail:
    msg: "{{ ansible_facts.azure_loadbalancer.message }}"
  when: not ansible_facts.azure_loadbalancer.available

- name: Test a playbook against the bundled IMDS emulator
  imds.azure.loadbalancer_facts:
    endpoint: http://127.0.0.1:8080
    retry_timeout: 10

# Gather the facts together with the usual facts, in every play, by setting
# in the play (or in group_vars):
#   ansible_facts_modules: [smart, imds.azure.loadbalancer_facts]
#   ansible_facts_parallel: false   # see the collection's guide
# or in ansible.cfg:
#   [defaults]
#   facts_modules = smart, imds.azure.loadbalancer_facts
# Options then come from module_defaults, e.g. in the play:
#   module_defaults:
#     group/imds.azure.imds:
#       retry_timeout: 30
- name: Use the gathered facts to list the backend ports
  ansible.builtin.debug:
    msg: "{{ ansible_facts.azure_loadbalancer.backend_ports }}"
  when: ansible_facts.azure_loadbalancer.available
'''

RETURN = r'''
ansible_facts:
  description: Facts to add to ansible_facts.
  returned: success
  type: dict
  contains:
    azure_loadbalancer:
      description: What the Standard Load Balancer in front of this VM says, normalised.
      returned: success
      type: dict
      contains:
        available:
          description:
            - Whether load balancer metadata was found.
            - C(false) when the VM is not in the backend pool of a Standard SKU load balancer, or the host is
              not an Azure VM; all lists and dictionaries are then empty.
          returned: always
          type: bool
          sample: true
        reason:
          description:
            - Why no metadata is available, as one word.
            - C(no_loadbalancer) means IMDS answered that this VM has no Standard load balancer;
              C(not_azure) means the host is not an Azure VM (DMI, or the default endpoint is unreachable).
          returned: when available is false
          type: str
          sample: no_loadbalancer
        message:
          description: Why no metadata is available, as a sentence for humans.
          returned: when available is false
          type: str
          sample: "No load balancer metadata: this VM is not in the backend pool of a Standard SKU load balancer."
        api_version:
          description: The IMDS api-version that was asked for.
          returned: always
          type: str
          sample: '2020-10-01'
        public_ip_addresses:
          description: Public frontend IPs that map to a private IP of this VM.
          returned: always
          type: list
          elements: dict
          contains:
            frontend_ip_address:
              description: The public (frontend) IP address.
              type: str
              sample: 51.0.0.1
            private_ip_address:
              description: The private IP address of this VM behind it.
              type: str
              sample: 10.1.0.4
        inbound_rules:
          description: Load balancing and inbound NAT rules that send traffic to this VM, duplicates removed.
          returned: always
          type: list
          elements: dict
          contains:
            frontend_ip_address:
              description: Frontend IP of the rule; IPv6 in compressed lower-case form.
              type: str
              sample: 50.0.0.1
            protocol:
              description: C(tcp), C(udp), or C(all) for rules that cover every protocol.
              type: str
              sample: tcp
            frontend_port:
              description: Port on the frontend IP; C(0) when the rule covers all ports (HA ports).
              type: int
              sample: 80
            backend_port:
              description: Port on this VM the traffic is sent to; C(0) when the rule covers all ports.
              type: int
              sample: 443
            private_ip_address:
              description: Private IP of this VM the rule sends traffic to.
              type: str
              sample: 10.1.0.4
            all_ports:
              description: Whether the rule covers all ports (an HA ports rule, ports reported as C(0)).
              type: bool
              sample: false
        outbound_rules:
          description: Outbound rules (source NAT) that apply to this VM.
          returned: always
          type: list
          elements: dict
          contains:
            frontend_ip_address:
              description: Frontend IP that outbound traffic of this VM leaves from.
              type: str
              sample: 50.0.0.1
            private_ip_address:
              description: Private IP of this VM the rule applies to.
              type: str
              sample: 10.1.0.4
        tunnel_interfaces:
          description:
            - The VXLAN tunnel interfaces of a Gateway Load Balancer this VM is a backend of, duplicates removed.
            - Empty for every other load balancer.
          returned: always
          type: list
          elements: dict
          contains:
            gateway_ip_address:
              description: Frontend IP of the Gateway Load Balancer.
              type: str
              sample: 10.0.0.4
            gateway_port:
              description: UDP port of the tunnel on the Gateway Load Balancer.
              type: int
              sample: 10800
            identifier:
              description: The tunnel's VXLAN network identifier (VNI).
              type: int
              sample: 800
            type:
              description: C(internal) or C(external), in lower case whatever IMDS wrote.
              type: str
              sample: internal
            protocol:
              description: The tunnel protocol, in lower case; C(vxlan).
              type: str
              sample: vxlan
            local_ip_address:
              description: Private IP of this VM the tunnel ends at.
              type: str
              sample: 10.0.0.5
            local_port:
              description: UDP port of the tunnel on this VM.
              type: int
              sample: 10800
        frontend_ips:
          description: Every distinct frontend IP of public IPs, inbound and outbound rules; IPv4 first, in numeric order.
          returned: always
          type: list
          elements: str
          sample: ["50.0.0.1", "51.0.0.1", "2603:10e1:100:2::1:1"]
        private_ips:
          description: Every distinct private IP of this VM that appears in the metadata, in numeric order.
          returned: always
          type: list
          elements: str
          sample: ["10.1.0.4", "ace:cab:deca:deed::1"]
        backend_ports:
          description: Distinct backend ports of the inbound rules, ascending; all-ports rules (C(0)) are left out.
          returned: always
          type: list
          elements: int
          sample: [443]
        inbound_rules_by_private_ip:
          description: The inbound rules grouped by private IP; keys are the private IPs.
          returned: always
          type: dict
          sample: {"10.1.0.4": [{"frontend_ip_address": "50.0.0.1", "protocol": "tcp", "frontend_port": 80,
                                 "backend_port": 443, "private_ip_address": "10.1.0.4", "all_ports": false}]}
        inbound_rules_by_backend_port:
          description:
            - The inbound rules grouped by backend port.
            - Keys are the ports as strings, because fact caches store dictionary keys as strings.
          returned: always
          type: dict
          sample: {"443": [{"frontend_ip_address": "50.0.0.1", "protocol": "tcp", "frontend_port": 80,
                            "backend_port": 443, "private_ip_address": "10.1.0.4", "all_ports": false}]}
error_code:
  description:
    - What went wrong, as one word, to test in C(failed_when) or C(until).
    - For example C(invalid_metadata) (the answer could not be trusted), C(empty_answer) (the answer said nothing),
        C(throttled) or C(unavailable) (still failing when I(retry_timeout) ran out), C(timeout).
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

from ansible_collections.imds.azure.plugins.module_utils._facts_shape import unavailable_facts
from ansible_collections.imds.azure.plugins.module_utils._imds import (
    ImdsError,
    NotAzureError,
    failures,
    imds_argument_spec,
)
from ansible_collections.imds.azure.plugins.module_utils._imds_module import ImdsModule, run_module

LOADBALANCER_API_VERSION = '2020-10-01'


def gather_loadbalancer_facts(client, api_version):
    """The azure_loadbalancer facts, or an ImdsError."""
    try:
        document = client.get_json('loadbalancer', api_version=api_version)
    except NotAzureError as exc:
        return unavailable_facts('not_azure', exc.message, api_version)
    except ImdsError as exc:
        if exc.code != 'no_loadbalancer':
            raise
        return unavailable_facts('no_loadbalancer', exc.message, api_version)
    # Loaded only with a document in hand: hosts without one never compile the normalisers.
    from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import (
        LoadBalancerDataError,
        normalize_loadbalancer,
    )
    try:
        return normalize_loadbalancer(document, api_version)
    except LoadBalancerDataError as exc:
        raise failures().invalid_metadata(exc)


def main():
    module = ImdsModule(
        argument_spec=imds_argument_spec(LOADBALANCER_API_VERSION),
        supports_check_mode=True,
    )
    api_version = module.params['api_version']
    run_module(module, lambda client: {
        'ansible_facts': {'azure_loadbalancer': gather_loadbalancer_facts(client, api_version)}})


if __name__ == '__main__':
    main()
