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
    EmptyAnswerError,
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
        'tunnel_interfaces': [],
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
            rule(frontend='2603:10E1:0100:0002:0000:0000:0001:0001', protocol='Tcp', backend_port=' 443',
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
    {'loadbalancer': {'publicIpAddresses': [], 'inboundRules': [], 'outboundRules': []}},
    {'loadbalancer': {'publicIpAddresses': None, 'inboundRules': [], 'outboundRules': None}},
    {'loadbalancer': {'outboundRules': []}},
    {'inboundRules': []},
])
def test_answer_with_empty_lists_gives_empty_facts(document):
    # Real VMs in a backend pool without rules answer like this: a valid, empty answer.
    facts = normalize_loadbalancer(document, API)
    assert facts['available'] is True
    assert all(facts[key] == [] for key in FACTS_LIST_KEYS)
    assert all(facts[key] == {} for key in FACTS_DICT_KEYS)


@pytest.mark.parametrize('document', [
    {},
    {'loadbalancer': None},
    {'loadbalancer': {}},
    {'loadbalancer': {'publicIpAddresses': None, 'inboundRules': None}},
    {'loadbalancer': {'sku': 'Standard'}},
    {'LoadBalancer': {}},
])
def test_answer_that_says_nothing_is_an_empty_answer(document):
    with pytest.raises(EmptyAnswerError) as raised:
        normalize_loadbalancer(document, API)
    assert raised.value.code == 'empty_answer'


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
        rule(frontend='2603:10e1::1', protocol='udp', backend_port=53, private='10.0.0.10'),
    ]}}, API)
    assert facts['frontend_ips'] == ['9.9.9.9', '10.0.0.200', '2603:10e1::1']
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


@pytest.mark.parametrize('value, expected', [(80, 80), ('443', 443), (' 8080 ', 8080), (0, 0), (65535, 65535)])
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


# -- what Azure really sends ---------------------------------------------------------

GATEWAY_TUNNELS = [
    {'gateway_ip_address': '10.20.0.4', 'gateway_port': 10800, 'identifier': 800, 'type': 'internal',
     'protocol': 'vxlan', 'local_ip_address': '10.20.1.5', 'local_port': 10800},
    {'gateway_ip_address': '10.20.0.4', 'gateway_port': 10801, 'identifier': 801, 'type': 'external',
     'protocol': 'vxlan', 'local_ip_address': '10.20.1.5', 'local_port': 10801},
]


@pytest.mark.parametrize('fixture', ['lb_200_gateway_lower', 'lb_200_gateway_capitalised'])
def test_gateway_tunnel_interfaces_become_facts_in_either_spelling(fixture):
    facts = normalize_loadbalancer(load_fixture(fixture)['body'], API)
    assert facts['tunnel_interfaces'] == GATEWAY_TUNNELS
    assert facts['inbound_rules'][0]['all_ports'] is True
    assert facts['inbound_rules'][0]['protocol'] == 'all'
    assert validate_facts(json.loads(json.dumps(facts))) == facts


def tunnel(**changes):
    raw = {'gatewayIpAddress': '10.20.0.4', 'gatewayPort': 10800, 'identifier': 800, 'type': 'internal',
           'protocol': 'vxlan', 'localIpAddress': '10.20.1.5', 'localPort': 10800}
    raw.update(changes)
    return raw


@pytest.mark.parametrize('changes, fragment', [
    (dict(type='transit'), 'tunnelInterfaces[0].type: unknown tunnel type'),
    (dict(protocol='geneve'), 'tunnelInterfaces[0].protocol: unknown tunnel protocol'),
    (dict(identifier=2 ** 24), 'tunnelInterfaces[0].identifier: VXLAN identifier 16777216 is outside'),
    (dict(identifier='800x'), 'tunnelInterfaces[0].identifier'),
    (dict(gatewayPort=0), 'tunnelInterfaces[0].gatewayPort: a tunnel port cannot be 0'),
    (dict(localPort=800.0), 'tunnelInterfaces[0].localPort: expected a port number (an integer)'),
    (dict(localIpAddress='127.0.0.1'), 'tunnelInterfaces[0].localIpAddress: 127.0.0.1 is a loopback address'),
    (dict(gatewayIpAddress='168.63.129.16'), 'tunnelInterfaces[0].gatewayIpAddress: 168.63.129.16 is an Azure'),
    (dict(gatewayIpAddress=None), 'tunnelInterfaces[0].gatewayIpAddress is missing'),
])
def test_untrustworthy_tunnel_interfaces_are_refused_with_the_field_named(changes, fragment):
    with pytest.raises(LoadBalancerDataError) as raised:
        normalize_loadbalancer({'loadbalancer': {'tunnelInterfaces': [tunnel(**changes)]}}, API)
    assert fragment in str(raised.value)


def test_real_capture_with_brackets_and_empty_lists_is_valid():
    facts = normalize_loadbalancer(load_fixture('lb_200_real_capture')['body'], API)
    assert facts['public_ip_addresses'] == [
        {'frontend_ip_address': '2603:10e1:100:2::1:1', 'private_ip_address': 'ace:cab:deca:deed::1'},
        {'frontend_ip_address': '51.0.0.1', 'private_ip_address': '10.1.0.4'}]
    assert facts['frontend_ips'] == ['51.0.0.1', '2603:10e1:100:2::1:1']
    assert facts['inbound_rules'] == [] and facts['outbound_rules'] == []


def test_misspelt_frontend_key_of_microsofts_example_is_read_as_frontend_ip_address():
    assert normalize_loadbalancer(load_fixture('lb_200_howto_misspelt')['body'], API) == \
        normalize_loadbalancer(documented(), API)


# -- ambiguous answers ----------------------------------------------------------------

@pytest.mark.parametrize('entry, fragment', [
    (dict(rule(frontend_port=80), frontend_port=8080), "'frontendPort' and 'frontend_port' are the same key"),
    (rule(frontendPort=80, FrontendPort='80'), 'are the same key with different values'),
    (rule(frotendIpAddress='50.0.0.2'), "'frontendIpAddress' and 'frotendIpAddress' are the same key"),
])
def test_two_spellings_of_one_key_that_disagree_are_refused(entry, fragment):
    with pytest.raises(LoadBalancerDataError) as raised:
        normalize_loadbalancer({'loadbalancer': {'inboundRules': [entry]}}, API)
    assert fragment in str(raised.value)
    assert 'inboundRules[0]' in str(raised.value)


def test_two_spellings_of_one_key_that_agree_are_one_key():
    entry = dict(rule(frontend_port=80), frontend_port=80, FRONTEND_PORT=80)
    facts = normalize_loadbalancer({'loadbalancer': {'inboundRules': [entry]}}, API)
    assert facts['inbound_rules'][0]['frontend_port'] == 80


@pytest.mark.parametrize('document', [
    {'loadbalancer': {'inboundRules': [rule()]}, 'inboundRules': [rule(backend_port=22)]},
    {'loadbalancer': None, 'publicIpAddresses': []},
    {'loadbalancer': {}, 'tunnelInterfaces': [tunnel()]},
])
def test_lists_both_at_the_top_and_inside_loadbalancer_are_refused(document):
    with pytest.raises(LoadBalancerDataError) as raised:
        normalize_loadbalancer(document, API)
    assert 'both at the top level and inside' in str(raised.value)


@pytest.mark.parametrize('value', [80.0, 8e1, 80.5, float('inf'), '80.0', '1e2', True])
def test_ports_written_as_json_floats_or_other_non_integers_are_refused(value):
    with pytest.raises(LoadBalancerDataError) as raised:
        normalize_loadbalancer({'loadbalancer': {'inboundRules': [rule(frontend_port=value)]}}, API)
    assert 'inboundRules[0].frontendPort' in str(raised.value)


def test_port_with_more_digits_than_python_converts_is_refused_cleanly():
    with pytest.raises(LoadBalancerDataError) as raised:
        normalize_loadbalancer({'loadbalancer': {'inboundRules': [rule(frontend_port='9' * 5000)]}}, API)
    assert 'is not a port number' in str(raised.value)
    assert len(str(raised.value)) < 200


# -- addresses no load balancer rule carries -----------------------------------------------

IMPLAUSIBLE = ['0.0.0.0', '::', '127.0.0.1', '::1', '169.254.10.1', 'fe80::1', '224.0.0.5', 'ff02::1',
               '255.255.255.255', '168.63.129.16', '169.254.169.254', '::ffff:127.0.0.1']


@pytest.mark.parametrize('address', IMPLAUSIBLE)
@pytest.mark.parametrize('section, make, field', [
    ('inboundRules', lambda a: rule(frontend=a), 'frontendIpAddress'),
    ('inboundRules', lambda a: rule(private=a), 'privateIpAddress'),
    ('publicIpAddresses', lambda a: {'frontendIpAddress': a, 'privateIpAddress': '10.1.0.4'}, 'frontendIpAddress'),
    ('outboundRules', lambda a: {'frontendIpAddress': '50.0.0.1', 'privateIpAddress': a}, 'privateIpAddress'),
])
def test_addresses_no_rule_carries_are_refused_naming_the_field(address, section, make, field):
    with pytest.raises(LoadBalancerDataError) as raised:
        normalize_loadbalancer({'loadbalancer': {section: [rule(), make(address)] if section == 'inboundRules'
                                                 else [make(address)]}}, API)
    index = 1 if section == 'inboundRules' else 0
    assert '%s[%d].%s: ' % (section, index, field) in str(raised.value)
    assert implausible_address_reason(ipaddress.ip_address(address)) in str(raised.value)


def test_cached_facts_with_an_implausible_address_are_refused():
    facts = json.loads(json.dumps(normalize_loadbalancer(documented(), API)))
    facts['inbound_rules'][0]['frontend_ip_address'] = '169.254.169.254'
    with pytest.raises(LoadBalancerDataError) as raised:
        validate_facts(facts)
    assert 'inbound_rules[0].frontend_ip_address: 169.254.169.254 is an Azure platform address' in str(raised.value)


def test_repeated_entries_are_dropped_keeping_the_first_position():
    rules = [rule(backend_port=port) for port in (3, 1, 3, 2, 1)]
    facts = normalize_loadbalancer({'loadbalancer': {'inboundRules': rules}}, API)
    assert [entry['backend_port'] for entry in facts['inbound_rules']] == [3, 1, 2]
