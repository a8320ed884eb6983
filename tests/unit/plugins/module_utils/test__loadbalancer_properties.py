# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Property tests: whatever JSON IMDS sends, the normalisers give facts or a clean error."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import json

from hypothesis import given, settings, strategies as st

from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import (
    LoadBalancerDataError,
    implausible_address_reason,
    normalize_loadbalancer,
    validate_facts,
)

API = '2020-10-01'
KEY_NAMES = ['loadbalancer', 'publicIpAddresses', 'inboundRules', 'outboundRules', 'frontendIpAddress',
             'privateIpAddress', 'protocol', 'frontendPort', 'backendPort', 'inbound_rules', 'LoadBalancer',
             'tunnelInterfaces', 'gatewayIpAddress', 'gatewayPort', 'identifier', 'type', 'localIpAddress',
             'localPort', 'frotendIpAddress', 'frontend_port']

json_scalars = st.none() | st.booleans() | st.integers(-70000, 70000) | st.floats(allow_nan=False) | st.text(max_size=12)
json_keys = st.sampled_from(KEY_NAMES) | st.text(max_size=6)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=5),
    max_leaves=25,
)

# Addresses a load balancer rule can carry: IPv4 unicast outside 0/8 and 127/8, IPv6 global unicast and
# unique local, IPv4-mapped IPv6; the few platform and link-local ones left in those ranges are filtered out.
ipv4 = (st.integers(0x01000000, 0x7EFFFFFF) | st.integers(0x80000000, 0xDFFFFFFF)).map(ipaddress.IPv4Address).filter(
    lambda address: implausible_address_reason(address) is None)
ipv6 = (st.integers(0x2000 << 112, (0x4000 << 112) - 1) | st.integers(0xfc00 << 112, (0xfe00 << 112) - 1)).map(
    ipaddress.IPv6Address)
ipv4_mapped = ipv4.map(lambda address: ipaddress.IPv6Address('::ffff:%s' % address))
addresses = ipv4 | ipv6 | ipv4_mapped
# And the ones no rule ever carries (loopback, link-local, unspecified, multicast, broadcast, Azure platform),
# drawn from the ranges themselves so that every kind comes up.
implausible_networks = st.sampled_from(['0.0.0.0/8', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4',
                                        '255.255.255.255/32', '168.63.129.16/32', '::/128', '::1/128',
                                        'fe80::/10', 'ff00::/8', '::ffff:127.0.0.0/104'])
implausible_addresses = implausible_networks.map(ipaddress.ip_network).flatmap(
    lambda network: st.integers(0, network.num_addresses - 1).map(lambda offset: network[offset]))


@st.composite
def written_address(draw):
    """An address as IMDS might write it: compressed, exploded, upper case, bracketed."""
    address = draw(addresses)
    text = draw(st.sampled_from([address.compressed, address.exploded]))
    if draw(st.booleans()):
        text = text.upper()
    if address.version == 6 and draw(st.booleans()):
        text = '[%s]' % text
    return address, text


@st.composite
def imds_rule(draw):
    frontend, frontend_text = draw(written_address())
    private, private_text = draw(written_address())
    all_ports = draw(st.booleans())
    frontend_port = 0 if all_ports else draw(st.integers(1, 65535))
    backend_port = 0 if all_ports else draw(st.integers(1, 65535))
    protocol = draw(st.sampled_from(['tcp', 'udp', 'all']))
    raw = {
        'frontendIpAddress': frontend_text,
        'privateIpAddress': private_text,
        'protocol': draw(st.sampled_from([protocol, protocol.upper(), protocol.capitalize()])),
        'frontendPort': draw(st.sampled_from([frontend_port, str(frontend_port)])),
        'backendPort': draw(st.sampled_from([backend_port, str(backend_port)])),
    }
    expected = (frontend, protocol, frontend_port, backend_port, private)
    return raw, expected


def check_invariants(facts):
    assert facts['available'] is True
    for key in ('frontend_ips', 'private_ips'):
        parsed = [ipaddress.ip_address(text) for text in facts[key]]
        assert [str(a) for a in parsed] == facts[key], 'canonical form'
        assert len(set(parsed)) == len(parsed), 'distinct'
        assert parsed == sorted(parsed, key=lambda a: (a.version, int(a))), 'sorted'
    for rule in facts['inbound_rules']:
        assert rule['protocol'] in ('tcp', 'udp', 'all')
        assert 0 <= rule['frontend_port'] <= 65535 and 0 <= rule['backend_port'] <= 65535
        assert rule['frontend_ip_address'] in facts['frontend_ips']
        assert rule in facts['inbound_rules_by_private_ip'][rule['private_ip_address']]
        assert rule in facts['inbound_rules_by_backend_port'][str(rule['backend_port'])]
    assert facts['backend_ports'] == sorted(set(r['backend_port'] for r in facts['inbound_rules'] if r['backend_port']))


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_gives_facts_or_a_clean_error(document):
    try:
        facts = normalize_loadbalancer(document, API)
    except LoadBalancerDataError as exc:
        assert str(exc)
        return
    check_invariants(facts)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(['publicIpAddresses', 'inboundRules', 'outboundRules']), json_values, min_size=1))
def test_any_json_inside_the_known_lists_gives_facts_or_a_clean_error(body):
    try:
        facts = normalize_loadbalancer({'loadbalancer': body}, API)
    except LoadBalancerDataError:
        return
    check_invariants(facts)


@settings(max_examples=300, deadline=None)
@given(st.lists(imds_rule(), max_size=8))
def test_valid_rules_keep_their_information(rules):
    facts = normalize_loadbalancer({'loadbalancer': {'inboundRules': [raw for raw, _ignored in rules]}}, API)
    check_invariants(facts)
    got = [(ipaddress.ip_address(r['frontend_ip_address']), r['protocol'], r['frontend_port'], r['backend_port'],
            ipaddress.ip_address(r['private_ip_address'])) for r in facts['inbound_rules']]
    wanted = []
    for _ignored, expected in rules:
        frontend, protocol, frontend_port, backend_port, private = expected
        # IPv4-mapped IPv6 addresses are reported as the IPv4 address they carry.
        frontend = getattr(frontend, 'ipv4_mapped', None) or frontend
        private = getattr(private, 'ipv4_mapped', None) or private
        item = (frontend, protocol, frontend_port, backend_port, private)
        if item not in wanted:
            wanted.append(item)
    assert got == wanted
    assert all(r['all_ports'] == (r['frontend_port'] == 0) for r in facts['inbound_rules'])


@settings(max_examples=300, deadline=None)
@given(st.lists(imds_rule(), min_size=1, max_size=6), st.data())
def test_an_address_no_rule_carries_anywhere_refuses_the_whole_answer(rules, data):
    raw_rules = [raw for raw, _ignored in rules]
    victim = data.draw(st.integers(0, len(raw_rules) - 1))
    field = data.draw(st.sampled_from(['frontendIpAddress', 'privateIpAddress']))
    address = data.draw(implausible_addresses)
    raw_rules[victim] = dict(raw_rules[victim], **{field: data.draw(st.sampled_from([str(address), address.exploded]))})
    try:
        normalize_loadbalancer({'loadbalancer': {'inboundRules': raw_rules}}, API)
    except LoadBalancerDataError as exc:
        assert ('inboundRules[%d].%s: ' % (victim, field)) in str(exc)
        assert implausible_address_reason(address) in str(exc)
    else:
        raise AssertionError('%s in %s was accepted' % (address, field))


@settings(max_examples=200, deadline=None)
@given(st.lists(imds_rule(), max_size=6))
def test_facts_survive_a_json_fact_cache(rules):
    facts = normalize_loadbalancer({'loadbalancer': {'inboundRules': [raw for raw, _ignored in rules]}}, API)
    assert validate_facts(json.loads(json.dumps(facts))) == facts
