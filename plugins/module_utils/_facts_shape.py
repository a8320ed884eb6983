# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The keys every azure_loadbalancer facts dictionary has, and the facts of a host without load balancer metadata.

Apart from _loadbalancer.py so that hosts without load balancer metadata (or
not on Azure) get their facts without compiling the normalisers: see
"Module load time" in CONTRIBUTING.md.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

FACTS_LIST_KEYS = (
    'public_ip_addresses',
    'inbound_rules',
    'outbound_rules',
    'tunnel_interfaces',
    'frontend_ips',
    'private_ips',
    'backend_ports',
)
FACTS_DICT_KEYS = (
    'inbound_rules_by_private_ip',
    'inbound_rules_by_backend_port',
)


def unavailable_facts(reason, message, api_version):
    """Facts for a host without load balancer metadata: same keys, nothing in them."""
    facts = {
        'available': False,
        'reason': reason,
        'message': message,
        'api_version': api_version,
    }
    facts.update((key, []) for key in FACTS_LIST_KEYS)
    facts.update((key, {}) for key in FACTS_DICT_KEYS)
    return facts
