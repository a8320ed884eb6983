# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import ipaddress
import json

import pytest

from ansible_collections.imds.azure.plugins.module_utils._facts_shape import (
    FACTS_DICT_KEYS,
    FACTS_LIST_KEYS,
    unavailable_facts,
)
from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import (
    LoadBalancerDataError,
    implausible_address_reason,
    normalize_inbound_rule,
    normalize_ip,
    normalize_loadbalancer,
    normalize_port,
    normalize_protocol,
    validate_facts,
)
from ansible_collections.imds.azure.tests.unit.utils.imds_server import load_fixture

API = '2020-10-01'


def documented():
    return copy.deepcopy(load_fixture('lb_200_documented')['body'])


def rule(frontend='50.0.0.1', protocol='tcp', frontend_port=80, backend_port=8080, private='10.1.0.4', **extra):
    raw = {'frontendIpAddress': frontend, 'protocol': protocol, 'frontendPort': frontend_port,
           'backendPort': backend_port, 'privateIpAddress': private}
    raw.update(extra)
    return raw


def test_documented_sample_becomes_the_documented_facts():
    facts = normalize_loadbalancer(documented(), API)
    v4_rule = {'frontend_ip_address': '50.0.0.1', 'protocol': 'tcp', 'frontend_port': 80, 'backend_port': 443,
               'private_ip_address': '10.1.0.4', 'all_ports': False}
    v6_rule = {'frontend_ip_address': '2603:10e1:100:2::1:1', 'protocol': 'tcp', 'frontend_port': 80,
               'backend_port': 443, 'private_ip_address': 'ace:cab:deca:deed::1', 'all_ports': False}
    assert facts == {
        'available': True,
        'api_version': API,
        'public_ip_addresses': [{'frontend_ip_address': '51.0.0.1', 'private_ip_address': '10.1.0.4'}],
        'inbound_rules': [v4_rule, v6_rule],
        'outbound_rules': [{'frontend_ip_address': '50.0.0.1', 'private_ip_address': '10.1.0.4'},
                           {'frontend_ip_address': '2603:10e1:100:2::1:1', 'private_ip_address': 'ace:cab:deca:deed::1'}],
        'frontend_ips': ['50.0.0.1', '51.0.0.1', '2603:10e1:100:2::1:1'],
        'private_ips': ['10.1.0.4', 'ace:cab:deca:deed::1'],
        'backend_ports': [443],
        'inbound_rules_by_private_ip': {'10.1.0.4': [v4_rule], 'ace:cab:deca:deed::1': [v6_rule]},
        'inbound_rules_by_backend_port': {'443': [v4_rule, v6_rule]},
    }


def test_real_world_variations_give_the_same_facts_as_the_documented_sample():
    varied = {'LoadBalancer': {
        'PublicIPAddresses': [{'frontendIPAddress': ' 51.0.0.1 ', 'privateIPAddress': '10.1.0.4', 'sku': 'Standard'}],
        'inboundRules': [
            rule(backend_port='443', frontend_port='80', protocol='TCP'),
            rule(frontend='2603:10E1:0100:0002:0000:0000:0001:0001', protocol='Tcp', backend_port=443.0,
                 private='[ACE:CAB:DECA:DEED:0:0:0:1]', loadBalancerKind='gateway'),
            rule(backend_port=443),  # repeated rule
        ],
        'outbound_rules': [
            {'frontend_ip_address': '50.0.0.1', 'private_ip_address': '::ffff:10.1.0.4'},
            {'frontendIpAddress': '2603:10e1:100:2::1:1', 'privateIpAddress': 'ace:cab:deca:deed::1'},
        ],
        'gatewayLoadBalancer': {'something': 'new'},
    }}
    assert normalize_loadbalancer(varied, API) == normalize_loadbalancer(documented(), API)


@pytest.mark.parametrize('document', [
    {'loadbalancer': {}},
    {'loadbalancer': None},
    {},
    {'loadbalancer': {'publicIpAddresses': None, 'inboundRules': [], 'outboundRules': None}},
    {'inboundRules': []},
])
def test_empty_or_null_lists_give_empty_facts(document):
    facts = normalize_loadbalancer(document, API)
    assert facts['available'] is True
    assert all(facts[key] == [] for key in FACTS_LIST_KEYS)
    assert all(facts[key] == {} for key in FACTS_DICT_KEYS)


def test_outer_key_may_be_missing():
    assert normalize_loadbalancer(documented()['loadbalancer'], API) == normalize_loadbalancer(documented(), API)


def test_a_lone_object_counts_as_a_one_item_list():
    facts = normalize_loadbalancer({'loadbalancer': {'inboundRules': rule()}}, API)
    assert [r['backend_port'] for r in facts['inbound_rules']] == [8080]


def test_ha_ports_rule_is_marked_and_kept_out_of_backend_ports():
    facts = normalize_loadbalancer({'loadbalancer': {'inboundRules': [
        rule(protocol='All', frontend_port=0, backend_port=0), rule(backend_port=8080)]}}, API)
    assert facts['inbound_rules'][0]['all_ports'] is True
    assert facts['inbound_rules'][0]['protocol'] == 'all'
    assert facts['backend_ports'] == [8080]
    assert sorted(facts['inbound_rules_by_backend_port']) == ['0', '8080']


def test_grouping_and_sorting():
    facts = normalize_loadbalancer({'loadbalancer': {'inboundRules': [
        rule(frontend='9.9.9.9', backend_port=9000, private='10.0.0.10'),
        rule(frontend='10.0.0.200', backend_port=80, private='10.0.0.9'),
        rule(frontend='::1', protocol='udp', backend_port=53, private='10.0.0.10'),
    ]}}, API)
    assert facts['frontend_ips'] == ['9.9.9.9', '10.0.0.200', '::1']
    assert facts['private_ips'] == ['10.0.0.9', '10.0.0.10']
    assert facts['backend_ports'] == [53, 80, 9000]
    assert [r['backend_port'] for r in facts['inbound_rules_by_private_ip']['10.0.0.10']] == [9000, 53]
    assert [r['protocol'] for r in facts['inbound_rules_by_backend_port']['53']] == ['udp']


@pytest.mark.parametrize('document, fragment', [
    ([], 'response: expected an object'),
    ('text', 'response: expected an object'),
    ({'unexpected': 1}, 'no "loadbalancer" object'),
    ({'loadbalancer': []}, 'loadbalancer: expected an object'),
    ({'loadbalancer': {'inboundRules': 'tcp/80'}}, 'inboundRules: expected a list'),
    ({'loadbalancer': {'inboundRules': ['tcp/80']}}, 'inboundRules[0]: expected an object'),
    ({'loadbalancer': {'inboundRules': [rule(frontend='1.2.3.4; include /etc/passwd')]}},
     'inboundRules[0].frontendIpAddress'),
    ({'loadbalancer': {'inboundRules': [rule(backend_port='80 default_server')]}}, 'inboundRules[0].backendPort'),
    ({'loadbalancer': {'inboundRules': [rule(protocol='tcp;')]}}, 'unknown protocol'),
    ({'loadbalancer': {'inboundRules': [rule(frontend_port=70000)]}}, 'outside 0-65535'),
    ({'loadbalancer': {'inboundRules': [rule(frontend_port=-1)]}}, 'outside 0-65535'),
    ({'loadbalancer': {'inboundRules': [rule(frontend_port=True)]}}, 'expected a port number'),
    ({'loadbalancer': {'inboundRules': [rule(frontend_port=80.5)]}}, 'expected a port number'),
    ({'loadbalancer': {'inboundRules': [rule(frontend_port='\u0668\u0660')]}}, 'is not a port number'),
    ({'loadbalancer': {'inboundRules': [rule(frontend_port=0, backend_port=80)]}}, 'disagree'),
    ({'loadbalancer': {'inboundRules': [{'frontendIpAddress': '50.0.0.1', 'frontendPort': 80, 'backendPort': 80,
                                         'privateIpAddress': '10.0.0.4'}]}}, 'inboundRules[0].protocol is missing'),
    ({'loadbalancer': {'outboundRules': [{'frontendIpAddress': '50.0.0.1', 'privateIpAddress': ''}]}},
     'outboundRules[0].privateIpAddress'),
    ({'loadbalancer': {'publicIpAddresses': [{'frontendIpAddress': 50, 'privateIpAddress': '10.0.0.4'}]}},
     'publicIpAddresses[0].frontendIpAddress: expected an IP address'),
    ({'loadbalancer': {'publicIpAddresses': [{'frontendIpAddress': 'fe80::1%eth0', 'privateIpAddress': '10.0.0.4'}]}},
     'is not an IP address'),
])
def test_untrustworthy_documents_are_rejected_with_the_field_named(document, fragment):
    with pytest.raises(LoadBalancerDataError) as raised:
        normalize_loadbalancer(document, API)
    assert fragment in str(raised.value)


@pytest.mark.parametrize('value, expected', [
    ('10.1.0.4', '10.1.0.4'),
    ('2603:10E1:100:2:0:0:1:1', '2603:10e1:100:2::1:1'),
    ('[::1]', '::1'),
    ('::ffff:192.0.2.1', '192.0.2.1'),
])
def test_normalize_ip(value, expected):
    assert normalize_ip(value, 'x') == expected


@pytest.mark.parametrize('value, expected', [(80, 80), ('443', 443), (' 8080 ', 8080), (0, 0), (65535, 65535), (22.0, 22)])
def test_normalize_port(value, expected):
    assert normalize_port(value, 'x') == expected


@pytest.mark.parametrize('value, expected', [('TCP', 'tcp'), ('Udp', 'udp'), ('All', 'all'), ('*', 'all'), ('any', 'all')])
def test_normalize_protocol(value, expected):
    assert normalize_protocol(value, 'x') == expected


@pytest.mark.parametrize('value', ['sctp', '', None, 6])
def test_unknown_protocol_is_rejected(value):
    with pytest.raises(LoadBalancerDataError):
        normalize_protocol(value, 'x')


def test_normalized_rule_reads_back_unchanged():
    once = normalize_inbound_rule(rule(protocol='UDP', backend_port='53', frontend_port='53'), 'r')
    assert normalize_inbound_rule(once, 'r') == once


def test_facts_that_went_through_a_json_cache_validate_unchanged():
    facts = normalize_loadbalancer(documented(), API)
    assert validate_facts(json.loads(json.dumps(facts))) == facts


def test_unavailable_facts_validate_unchanged():
    facts = unavailable_facts('not_azure', 'Not an Azure VM.', API)
    assert validate_facts(json.loads(json.dumps(facts))) == facts


@pytest.mark.parametrize('tamper, fragment', [
    (lambda f: f['inbound_rules'][0].update(frontend_ip_address='1.2.3.4 default_server'), 'inbound_rules[0]'),
    (lambda f: f['inbound_rules'][0].update(backend_port='443;'), 'backend_port'),
    (lambda f: f['public_ip_addresses'].append('51.0.0.2'), 'public_ip_addresses[1]'),
    (lambda f: f.update(available='yes'), 'available'),
])
def test_tampered_cached_facts_are_rejected(tamper, fragment):
    facts = json.loads(json.dumps(normalize_loadbalancer(documented(), API)))
    tamper(facts)
    with pytest.raises(LoadBalancerDataError) as raised:
        validate_facts(facts)
    assert fragment in str(raised.value)


@pytest.mark.parametrize('text, reason', [
    ('168.63.129.16', 'platform'),
    ('169.254.169.254', 'platform'),
    ('::ffff:168.63.129.16', 'platform'),
    ('0.0.0.0', 'unspecified'),
    ('0.1.2.3', 'unspecified'),
    ('::', 'unspecified'),
    ('127.0.0.1', 'loopback'),
    ('127.8.9.10', 'loopback'),
    ('::1', 'loopback'),
    ('169.254.1.1', 'link-local'),
    ('fe80::1', 'link-local'),
    ('224.0.0.1', 'multicast'),
    ('ff02::1', 'multicast'),
    ('255.255.255.255', 'broadcast'),
])
def test_addresses_no_load_balancer_uses_are_named(text, reason):
    assert reason in implausible_address_reason(ipaddress.ip_address(text))


@pytest.mark.parametrize('text', ['50.0.0.1', '10.1.0.4', '2603:10e1:100:2::1:1', 'ace:cab:deca:deed::1',
                                  '168.63.129.17', '172.16.0.5'])
def test_frontend_and_backend_addresses_are_plausible(text):
    assert implausible_address_reason(ipaddress.ip_address(text)) is None
