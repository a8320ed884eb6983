# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The nginx filters: listener plans from load balancer facts, and argument checks."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import copy
import ipaddress
import re

import pytest
from hypothesis import given, settings, strategies as st

from ansible.errors import AnsibleFilterError

from ansible_collections.imds.azure.plugins.filter.nginx_frontends import (
    FilterModule,
    nginx_argument,
    nginx_listeners,
    nginx_missing_addresses,
)
from ansible_collections.imds.azure.plugins.module_utils._facts_shape import unavailable_facts
from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import (
    implausible_address_reason,
    normalize_loadbalancer,
)

API = '2020-10-01'


def rule(frontend, private, frontend_port, backend_port=None, protocol='tcp'):
    return {
        'frontendIpAddress': frontend,
        'privateIpAddress': private,
        'protocol': protocol,
        'frontendPort': frontend_port,
        'backendPort': frontend_port if backend_port is None else backend_port,
    }


def facts_for(*rules):
    """Facts exactly as loadbalancer_facts would report them for these IMDS rules."""
    return normalize_loadbalancer({'loadbalancer': {'inboundRules': list(rules)}}, API)


DOCUMENTED = normalize_loadbalancer({'loadbalancer': {
    'publicIpAddresses': [{'frontendIpAddress': '51.0.0.1', 'privateIpAddress': '10.1.0.4'}],
    'inboundRules': [
        rule('50.0.0.1', '10.1.0.4', 80, 443),
        rule('2603:10e1:100:2::1:1', 'ace:cab:deca:deed::1', 80, 443),
    ],
    'outboundRules': [{'frontendIpAddress': '50.0.0.1', 'privateIpAddress': '10.1.0.4'}],
}}, API)


def only_server(servers):
    assert len(servers) == 1, servers
    return servers[0]


def test_filters_are_registered_under_their_names():
    assert FilterModule().filters() == {'nginx_listeners': nginx_listeners, 'nginx_argument': nginx_argument,
                                        'nginx_missing_addresses': nginx_missing_addresses}


def test_documented_sample_listens_on_the_private_ips_and_backend_port():
    plan = nginx_listeners(DOCUMENTED)

    server = only_server(plan['http_servers'])
    assert server['port'] == 443
    assert server['listens'] == ['10.1.0.4:443', '[ace:cab:deca:deed::1]:443']
    assert server['server_names'] == ['50.0.0.1', '[2603:10e1:100:2::1:1]']
    assert server['frontends'] == ['50.0.0.1:80', '[2603:10e1:100:2::1:1]:80']
    assert plan['stream_servers'] == []
    assert plan['loopback_addresses'] == []
    assert plan['host_private_ips'] == ['10.1.0.4', 'ace:cab:deca:deed::1']
    assert plan['warnings'] == []


def test_rules_sharing_a_backend_port_give_one_listener():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 80, 8080),
                      rule('50.0.0.2', '10.1.0.4', 8000, 8080),
                      rule('50.0.0.1', '10.1.0.4', 81, 8080))
    server = only_server(nginx_listeners(facts)['http_servers'])
    assert server['listens'] == ['10.1.0.4:8080']
    assert server['server_names'] == ['50.0.0.1', '50.0.0.2']
    assert server['frontends'] == ['50.0.0.1:80', '50.0.0.2:8000', '50.0.0.1:81']


def test_private_ips_restrict_the_rules_served():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 80, 8080), rule('50.0.0.2', '10.1.0.5', 80, 9090))
    plan = nginx_listeners(facts, private_ips=['10.1.0.5'])
    server = only_server(plan['http_servers'])
    assert (server['port'], server['listens']) == (9090, ['10.1.0.5:9090'])
    assert plan['host_private_ips'] == ['10.1.0.5']


def test_private_ips_are_compared_in_canonical_form():
    facts = facts_for(rule('50.0.0.1', 'ace:cab:deca:deed::1', 80, 8080))
    plan = nginx_listeners(facts, private_ips=['ACE:CAB:DECA:DEED:0:0:0:1'])
    assert only_server(plan['http_servers'])['listens'] == ['[ace:cab:deca:deed::1]:8080']


def test_private_ips_that_match_no_rule_leave_nothing_to_serve_and_say_so():
    plan = nginx_listeners(DOCUMENTED, private_ips=['10.9.9.9'])
    assert plan['http_servers'] == []
    assert any('10.9.9.9' in warning for warning in plan['warnings'])


def test_listen_all_addresses_uses_wildcards_per_family():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 80, 8080), rule('50.0.0.1', '10.1.0.5', 80, 8080),
                      rule('2603:10e1::1', 'ace:cab:deca:deed::1', 80, 8080))
    server = only_server(nginx_listeners(facts, listen_all_addresses=True)['http_servers'])
    assert server['listens'] == ['*:8080', '[::]:8080']


def test_floating_ip_listens_on_the_frontend_ip_and_port_and_needs_loopback_addresses():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 80, 8080), rule('2603:10e1::1', 'ace:cab:deca:deed::1', 80, 8080),
                      rule('50.0.0.2', '10.1.0.4', 443, 8443))
    plan = nginx_listeners(facts, floating_ip=True, sites={'443': {'root': '/srv/tls'}})

    by_port = dict((server['port'], server) for server in plan['http_servers'])
    assert sorted(by_port) == [80, 443]
    assert by_port[80]['listens'] == ['50.0.0.1:80', '[2603:10e1::1]:80']
    assert by_port[443]['listens'] == ['50.0.0.2:443']
    assert by_port[443]['root'] == '/srv/tls'
    assert plan['loopback_addresses'] == ['50.0.0.1', '50.0.0.2', '2603:10e1::1']


def test_floating_ip_adds_no_loopback_address_for_a_skipped_listener():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 80), rule('50.0.0.9', '10.1.0.4', 53, protocol='udp'))
    plan = nginx_listeners(facts, floating_ip=True)
    assert plan['loopback_addresses'] == ['50.0.0.1']
    assert plan['stream_servers'] == []


def test_udp_rule_with_a_site_becomes_a_udp_stream_server():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 53, 5353, 'udp'))
    plan = nginx_listeners(facts, sites={'5353/udp': {'upstream': ['10.2.0.8:53', '[fd00::8]:53 backup']}})

    server = only_server(plan['stream_servers'])
    assert server['protocol'] == 'udp'
    assert server['listens'] == ['10.1.0.4:5353 udp']
    assert server['upstream'] == 'azure_lb_udp_5353'
    assert plan['upstreams']['stream'] == [{'name': 'azure_lb_udp_5353', 'servers': ['10.2.0.8:53', '[fd00::8]:53 backup']}]
    assert plan['http_servers'] == []


def test_udp_rule_without_a_site_is_skipped_with_a_warning():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 53, 5353, 'udp'))
    plan = nginx_listeners(facts, sites={'5353': {'root': '/srv/www'}})
    assert plan['stream_servers'] == []
    assert any('UDP port 5353' in warning and '5353/udp' in warning for warning in plan['warnings'])
    # The TCP site of the same number is for another listener, which this host does not have.
    assert any("sites['5353']" in warning for warning in plan['warnings'])


def test_stream_ports_turn_tcp_rules_into_plain_tcp_servers():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 5432), rule('50.0.0.1', '10.1.0.4', 80, 8080))
    plan = nginx_listeners(facts, stream_ports=[5432], sites={5432: {'upstream': ['db.internal:5432'],
                                                                     'directives': ['proxy_timeout 3m']}})

    stream = only_server(plan['stream_servers'])
    assert (stream['protocol'], stream['port'], stream['listens']) == ('tcp', 5432, ['10.1.0.4:5432'])
    assert stream['upstream'] == 'azure_lb_tcp_5432'
    assert stream['directives'] == ['proxy_timeout 3m']
    assert [server['port'] for server in plan['http_servers']] == [8080]


def test_root_is_refused_for_a_stream_port():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 5432))
    with pytest.raises(AnsibleFilterError, match=r"sites\['5432'\]: root only works for HTTP"):
        nginx_listeners(facts, stream_ports=[5432], sites={'5432': {'root': '/srv'}})


def test_ha_ports_rule_is_skipped_with_a_warning_unless_ports_are_listed():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 0, 0, 'All'))
    plan = nginx_listeners(facts)
    assert plan['http_servers'] == [] and plan['stream_servers'] == []
    assert len(plan['warnings']) == 1
    assert 'HA ports rule' in plan['warnings'][0] and 'ha_tcp_ports' in plan['warnings'][0]


def test_ha_ports_rule_serves_the_listed_ports_of_each_protocol():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 0, 0, 'all'))
    plan = nginx_listeners(facts, ha_tcp_ports=[8443, 8080, 8443], ha_udp_ports=[5353],
                           sites={'5353/udp': {'directives': ['return "up"']}})

    assert [(server['port'], server['listens']) for server in plan['http_servers']] == [
        (8080, ['10.1.0.4:8080']), (8443, ['10.1.0.4:8443'])]
    assert plan['http_servers'][0]['frontends'] == ['50.0.0.1:8080']
    stream = only_server(plan['stream_servers'])
    assert (stream['listens'], stream['directives']) == (['10.1.0.4:5353 udp'], ['return "up"'])
    assert plan['warnings'] == []


def test_ha_ports_of_a_tcp_only_rule_ignore_the_udp_list():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 0, 0, 'tcp'))
    plan = nginx_listeners(facts, ha_udp_ports=[5353], sites={'5353/udp': {'directives': ['return "x"']}})
    assert plan['stream_servers'] == [] and plan['http_servers'] == []
    assert any('HA ports rule (tcp)' in warning for warning in plan['warnings'])


def test_ha_ports_with_floating_ip_listen_on_the_frontend_ip():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 0, 0, 'all'))
    plan = nginx_listeners(facts, floating_ip=True, ha_tcp_ports=[443])
    assert only_server(plan['http_servers'])['listens'] == ['50.0.0.1:443']
    assert plan['loopback_addresses'] == ['50.0.0.1']


def test_all_protocols_rule_on_one_port_gives_tcp_and_udp_listeners():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 53, 53, 'all'))
    plan = nginx_listeners(facts, sites={'53': {'upstream': ['10.2.0.8:53']}, '53/udp': {'upstream': ['10.2.0.8:53']}},
                           stream_ports=[53])
    assert [(server['protocol'], server['listens']) for server in plan['stream_servers']] == [
        ('tcp', ['10.1.0.4:53']), ('udp', ['10.1.0.4:53 udp'])]
    assert [upstream['name'] for upstream in plan['upstreams']['stream']] == ['azure_lb_tcp_53', 'azure_lb_udp_53']


def test_http_site_kinds():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 80, 8001), rule('50.0.0.1', '10.1.0.4', 81, 8002),
                      rule('50.0.0.1', '10.1.0.4', 82, 8003), rule('50.0.0.1', '10.1.0.4', 83, 8004))
    plan = nginx_listeners(
        facts,
        sites={
            8001: {'upstream': ['127.0.0.1:9000'], 'upstream_scheme': 'https', 'directives': ['proxy_read_timeout 5s']},
            8002: {'root': '/srv/www/static'},
            8003: {'directives': ['return 301 https://$host$request_uri']},
        },
        default_site={'root': '/var/www/html'},
    )
    by_port = dict((server['port'], server) for server in plan['http_servers'])
    assert (by_port[8001]['upstream'], by_port[8001]['upstream_scheme'], by_port[8001]['directives']) == (
        'azure_lb_http_8001', 'https', ['proxy_read_timeout 5s'])
    assert plan['upstreams']['http'] == [{'name': 'azure_lb_http_8001', 'servers': ['127.0.0.1:9000']}]
    assert (by_port[8002]['root'], by_port[8002]['upstream']) == ('/srv/www/static', None)
    assert (by_port[8003]['root'], by_port[8003]['directives']) == (None, ['return 301 https://$host$request_uri'])
    assert by_port[8004]['root'] == '/var/www/html'


def test_http_port_without_any_site_has_no_content():
    server = only_server(nginx_listeners(facts_for(rule('50.0.0.1', '10.1.0.4', 80)))['http_servers'])
    assert (server['upstream'], server['root'], server['directives']) == (None, None, [])


def test_user_server_names_follow_the_frontend_ips_once_each():
    plan = nginx_listeners(DOCUMENTED, server_names=['www.Example.com', '*.example.org', 'www.example.com', '_'])
    assert only_server(plan['http_servers'])['server_names'] == [
        '50.0.0.1', '[2603:10e1:100:2::1:1]', 'www.example.com', '*.example.org', '_']


@pytest.mark.parametrize('directive, rendered', [
    ('add_header X-Frame-Options "DENY";', 'add_header X-Frame-Options "DENY"'),
    ("add_header   Cache-Control\t'no-store'", "add_header Cache-Control 'no-store'"),
    ('client_max_body_size 10m', 'client_max_body_size 10m'),
    ('gzip on', 'gzip on'),
    ('return 200 "two  spaces kept"', 'return 200 "two  spaces kept"'),
])
def test_directives_are_normalised(directive, rendered):
    plan = nginx_listeners(facts_for(rule('50.0.0.1', '10.1.0.4', 80)), sites={80: {'directives': [directive]}})
    assert only_server(plan['http_servers'])['directives'] == [rendered]


def test_health_port_gets_its_own_server_on_the_host_private_ips():
    plan = nginx_listeners(DOCUMENTED, health_port=8081, health_path='/probe')
    health = plan['health']
    assert (health['path'], health['port'], health['drain']) == ('/probe', 8081, False)
    assert health['listens'] == ['10.1.0.4:8081', '[ace:cab:deca:deed::1]:8081']


def test_health_port_equal_to_an_http_port_shares_its_server():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 80, 8080), rule('50.0.0.2', '10.1.0.5', 80, 9090))
    plan = nginx_listeners(facts, health_port=8080)
    assert plan['health']['listens'] == []
    by_port = dict((server['port'], server) for server in plan['http_servers'])
    assert by_port[8080]['listens'] == ['10.1.0.4:8080', '10.1.0.5:8080']
    assert by_port[9090]['listens'] == ['10.1.0.5:9090']


def test_health_port_cannot_be_a_plain_tcp_port():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 5432))
    with pytest.raises(AnsibleFilterError, match='health_port 5432'):
        nginx_listeners(facts, stream_ports=[5432], sites={5432: {'upstream': ['db:5432']}}, health_port=5432)


def test_unavailable_facts_give_an_empty_plan_with_the_reason():
    facts = unavailable_facts('no_loadbalancer', 'This VM is not behind a Standard load balancer.', API)
    plan = nginx_listeners(facts, health_port=8081)
    assert plan['available'] is False
    assert (plan['reason'], plan['message']) == ('no_loadbalancer', 'This VM is not behind a Standard load balancer.')
    assert plan['http_servers'] == [] and plan['stream_servers'] == [] and plan['health']['listens'] == []


def test_facts_read_back_from_a_cache_in_other_spellings_are_accepted():
    cached = {
        'available': True,
        'api_version': API,
        'inbound_rules': [{'frontendIpAddress': '50.0.0.1', 'Protocol': 'TCP', 'frontend_port': '80',
                           'backend_port': '8080', 'private_ip_address': '10.1.0.4'}],
    }
    server = only_server(nginx_listeners(cached)['http_servers'])
    assert (server['port'], server['listens']) == (8080, ['10.1.0.4:8080'])


def test_the_plan_does_not_depend_on_the_order_of_the_rules():
    rules = [rule('50.0.0.1', '10.1.0.4', 80, 8080), rule('2603:10e1::1', 'ace::1', 80, 8080),
             rule('50.0.0.2', '10.1.0.5', 53, 5353, 'udp'), rule('50.0.0.3', '10.1.0.4', 0, 0, 'all')]
    options = dict(ha_tcp_ports=[9443], sites={'5353/udp': {'upstream': ['10.2.0.8:53']}}, health_port=8081)
    forward = nginx_listeners(facts_for(*rules), **options)
    backward = nginx_listeners(facts_for(*reversed(rules)), **options)
    for key in ('upstreams', 'stream_servers', 'health', 'loopback_addresses'):
        assert forward[key] == backward[key]
    for one, other in zip(forward['http_servers'], backward['http_servers']):
        assert one['listens'] == other['listens']
        assert sorted(one['server_names']) == sorted(other['server_names'])


def test_the_facts_given_are_not_modified():
    facts = copy.deepcopy(DOCUMENTED)
    nginx_listeners(facts, listen_all_addresses=True, health_port=8081)
    assert facts == DOCUMENTED


HOSTILE_RULES = [
    ('frontend IP with a directive', rule('1.2.3.4; include /etc/passwd', '10.1.0.4', 80),
     r'(?i)frontend_?ip_?address.*not an IP address'),
    ('port with a listen parameter', rule('50.0.0.1', '10.1.0.4', '80 default_server'), r'(?i)frontend_?port.*not a port'),
    ('protocol with a semicolon', rule('50.0.0.1', '10.1.0.4', 80, 80, 'tcp;'), 'unknown protocol'),
    ('private IP closing the block', rule('50.0.0.1', '10.1.0.4;\n}\nserver { listen 9999; }', 80),
     r'(?i)private_?ip_?address.*not an IP address'),
    ('IPv6 zone with a directive', rule('50.0.0.1', 'fe80::1%x;include', 80), r'not (an IP|a plain IPv4 or IPv6) address'),
    ('IPv6 frontend zone', rule('fe80::2%eth0', '10.1.0.4', 80), r'not (an IP|a plain IPv4 or IPv6) address'),
]


@pytest.mark.parametrize('inbound_rule, message', [(case[1], case[2]) for case in HOSTILE_RULES],
                         ids=[case[0] for case in HOSTILE_RULES])
def test_hostile_facts_fail_with_a_message_naming_the_field(inbound_rule, message):
    cached = {'available': True, 'inbound_rules': [inbound_rule]}
    with pytest.raises(AnsibleFilterError, match=message) as caught:
        nginx_listeners(cached)
    assert 'inbound_rules[0]' in str(caught.value)


@pytest.mark.parametrize('facts, message', [
    ({'available': 'yes'}, 'available: expected true or false'),
    ('not a dict', 'expected an object'),
    ({'available': True, 'inbound_rules': 'all'}, 'expected a list'),
], ids=['available as text', 'facts as text', 'rules as text'])
def test_malformed_facts_fail_cleanly(facts, message):
    with pytest.raises(AnsibleFilterError, match=message):
        nginx_listeners(facts)


BAD_OPTIONS = [
    ('server name with a directive', dict(server_names=['example.com; include /etc/passwd']), r'server_names\[0\]'),
    ('server name regex', dict(server_names=['~^www\\d+$']), r'server_names\[0\]'),
    ('server name as a number', dict(server_names=[42]), 'expected a string'),
    ('relative root', dict(sites={443: {'root': 'srv/www'}}), r"sites\[443\]\.root"),
    ('root with a space', dict(sites={443: {'root': '/srv/www; autoindex on'}}), r"\.root"),
    ('two directives in one', dict(sites={443: {'directives': ['gzip on; autoindex on']}}), r'directives\[0\]'),
    ('block directive', dict(sites={443: {'directives': ['location /x { return 200; }']}}), r'directives\[0\]'),
    ('directive with a comment', dict(sites={443: {'directives': ['gzip on # fast']}}), r'directives\[0\]'),
    ('quoted semicolon', dict(sites={443: {'directives': ['add_header X "a;b"']}}), r'directives\[0\]'),
    ('unbalanced quote', dict(sites={443: {'directives': ['add_header X "abc']}}), r'directives\[0\]'),
    ('backslash', dict(sites={443: {'directives': ['return 200 "a\\"; }']}}), r'directives\[0\]'),
    ('newline', dict(sites={443: {'directives': ['gzip on\nautoindex on']}}), r'directives\[0\]'),
    ('directives as text', dict(sites={443: {'directives': 'gzip on'}}), 'expected a list'),
    ('upstream without port', dict(sites={443: {'upstream': ['backend.internal']}}), 'host:port'),
    ('upstream port too high', dict(sites={443: {'upstream': ['10.0.0.5:99999']}}), 'host:port'),
    ('upstream bad IPv6', dict(sites={443: {'upstream': ['[zz::1]:80']}}), 'IPv6'),
    ('upstream parameter injection', dict(sites={443: {'upstream': ['10.0.0.5:80 weight=1;']}}), 'parameter'),
    ('upstream and root', dict(sites={443: {'upstream': ['10.0.0.5:80'], 'root': '/srv'}}), 'either upstream or root'),
    ('unknown site key', dict(sites={443: {'proxy': 'http://x'}}), 'unknown key'),
    ('bad scheme', dict(sites={443: {'upstream': ['10.0.0.5:80'], 'upstream_scheme': 'ftp'}}), 'upstream_scheme'),
    ('site key not a port', dict(sites={'web': {}}), 'not a port'),
    ('site key port 0', dict(sites={0: {}}), 'port from 1 to 65535'),
    ('same port twice', dict(sites={443: {}, '443/tcp': {}}), 'given twice'),
    ('site not a dict', dict(sites={443: '/srv/www'}), 'expected a dictionary'),
    ('default site with injection', dict(default_site={'root': '/srv {'}), r'default_site\.root'),
    ('health path relative', dict(health_path='healthz'), 'health_path'),
    ('health path with quote', dict(health_path='/h"ealth'), 'health_path'),
    ('health port 0', dict(health_port=0), 'health_port'),
    ('health port text', dict(health_port='eighty'), 'health_port'),
    ('health port in other digits', dict(health_port='\u0668\u0660'), 'health_port'),
    ('health path with a newline', dict(health_path='/healthz\n'), 'health_path'),
    ('server name with a newline', dict(server_names=['example.com\n']), r'server_names\[0\]'),
    ('root with a newline', dict(sites={443: {'root': '/srv/www\n'}}), r'\.root'),
    ('private IP not an address', dict(private_ips=['10.1.0.400']), r'private_ips\[0\]'),
    ('floating_ip not a boolean', dict(floating_ip='maybe'), 'floating_ip'),
    ('stream port out of range', dict(stream_ports=[70000]), r'stream_ports\[0\]'),
    ('ha port as bool', dict(ha_tcp_ports=[True]), r'ha_tcp_ports\[0\]'),
]


@pytest.mark.parametrize('options, message', [(case[1], case[2]) for case in BAD_OPTIONS],
                         ids=[case[0] for case in BAD_OPTIONS])
def test_unsafe_or_wrong_options_fail_with_a_message(options, message):
    with pytest.raises(AnsibleFilterError, match=message):
        nginx_listeners(DOCUMENTED, **options)


LISTEN = re.compile(r'^(\*|\[::\]|\[[0-9a-f:]+\]|\d{1,3}(\.\d{1,3}){3}):\d{1,5}( udp)?$')


def test_every_listen_argument_is_a_plain_address_and_port():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 80, 8080), rule('2603:10e1::1', 'ACE:CAB::1', 80, 8080),
                      rule('::ffff:50.0.0.2', '10.1.0.4', 53, 53, 'udp'), rule('50.0.0.3', '10.1.0.4', 0, 0, 'all'))
    for floating in (False, True):
        for listen_all in (False, True):
            plan = nginx_listeners(facts, floating_ip=floating, listen_all_addresses=listen_all, ha_tcp_ports=[9443],
                                   ha_udp_ports=[5353], sites={'53/udp': {'upstream': ['10.2.0.8:53']},
                                                               '5353/udp': {'upstream': ['10.2.0.8:53']}},
                                   health_port=8081)
            listens = [listen for server in plan['http_servers'] + plan['stream_servers'] for listen in server['listens']]
            listens += plan['health']['listens']
            assert listens and all(LISTEN.match(listen) for listen in listens), listens
            for server in plan['http_servers'] + plan['stream_servers']:
                assert len(server['listens']) == len(set(server['listens']))


@pytest.mark.parametrize('value, kind, expected', [
    ('www-data', 'word', 'www-data'),
    (4, 'word', '4'),
    ('auto', 'word', 'auto'),
    ('/run/nginx.pid', 'path', '/run/nginx.pid'),
    ('/etc/nginx/conf.d/*.conf', 'glob', '/etc/nginx/conf.d/*.conf'),
    ('/usr/share/nginx/modules/mod-[a-z]*.conf', 'glob', '/usr/share/nginx/modules/mod-[a-z]*.conf'),
    ('stderr', 'log', 'stderr'),
    ('off', 'log', 'off'),
    ('/var/log/nginx/error.log', 'log', '/var/log/nginx/error.log'),
])
def test_nginx_argument_returns_safe_values(value, kind, expected):
    assert nginx_argument(value, kind, 'setting') == expected


@pytest.mark.parametrize('value, kind', [
    ('www-data; include /etc/passwd', 'word'),
    ('two words', 'word'),
    (True, 'word'),
    ('run/nginx.pid', 'path'),
    ('/run/nginx.pid;', 'path'),
    ('/run/nginx.pid\n', 'path'),
    ('www-data\n', 'word'),
    ('/etc/nginx/conf.d/*.conf', 'path'),
    ('/etc/nginx/{a,b}.conf', 'glob'),
    ('syslog:server=10.0.0.1', 'log'),
    (['/a'], 'path'),
])
def test_nginx_argument_refuses_unsafe_values_naming_the_setting(value, kind):
    with pytest.raises(AnsibleFilterError, match='^setting: '):
        nginx_argument(value, kind, 'setting')


def test_nginx_argument_refuses_an_unknown_kind():
    with pytest.raises(AnsibleFilterError, match='kind must be one of'):
        nginx_argument('/x', 'file')


# Addresses a load balancer rule can have (global unicast), as the role only binds those.
ipv4_text = (st.integers(int(ipaddress.IPv4Address('1.0.0.0')), int(ipaddress.IPv4Address('126.255.255.255')))
             | st.integers(int(ipaddress.IPv4Address('128.0.0.0')), int(ipaddress.IPv4Address('223.255.255.255')))
             ).map(ipaddress.IPv4Address).filter(lambda address: implausible_address_reason(address) is None).map(str)
ipv6_text = st.integers(0x2000 << 112, (0x4000 << 112) - 1).map(ipaddress.IPv6Address).filter(
    lambda address: implausible_address_reason(address) is None).flatmap(
    lambda address: st.sampled_from([address.compressed, address.exploded, address.exploded.upper()]))
written_addresses = ipv4_text | ipv6_text
written_ports = st.integers(1, 65535).flatmap(lambda port: st.sampled_from([port, str(port)]))


@st.composite
def imds_rules(draw):
    if draw(st.integers(0, 5)) == 0:
        return rule(draw(written_addresses), draw(written_addresses), 0, 0, draw(st.sampled_from(['all', 'All', 'tcp'])))
    port = draw(written_ports)
    return rule(draw(written_addresses), draw(written_addresses), port, draw(written_ports),
                draw(st.sampled_from(['tcp', 'TCP', 'udp', 'Udp'])))


@settings(max_examples=150, deadline=None)
@given(rules=st.lists(imds_rules(), max_size=8), floating=st.booleans(), listen_all=st.booleans())
def test_any_rule_set_gives_one_safe_listener_per_rule(rules, floating, listen_all):
    facts = facts_for(*rules)
    plan = nginx_listeners(facts, floating_ip=floating, listen_all_addresses=listen_all)

    http = dict((server['port'], server) for server in plan['http_servers'])
    assert sorted(http) == [server['port'] for server in plan['http_servers']]
    for server in plan['http_servers']:
        assert server['listens'] and len(server['listens']) == len(set(server['listens']))
        assert all(LISTEN.match(listen) for listen in server['listens']), server['listens']
    for entry in facts['inbound_rules']:
        if entry['all_ports']:
            continue
        address = entry['frontend_ip_address'] if floating else entry['private_ip_address']
        port = entry['frontend_port'] if floating else entry['backend_port']
        if listen_all:
            address = '[::]' if ':' in address else '*'
        elif ':' in address:
            address = '[%s]' % address
        if entry['protocol'] == 'tcp':
            assert '%s:%d' % (address, port) in http[port]['listens']
        else:
            assert any('UDP port %d ' % port in warning for warning in plan['warnings'])
    # UDP listeners without an upstream are skipped, so nothing else appears.
    assert plan['stream_servers'] == []
    expected_ports = set(entry['frontend_port' if floating else 'backend_port'] for entry in facts['inbound_rules']
                         if entry['protocol'] == 'tcp' and not entry['all_ports'])
    assert set(http) == expected_ports


# --------------------------------------------------------------------------- live traffic: TLS, safety, operations

CERTIFICATE = '-----BEGIN CERTIFICATE-----\nMIIBleaf\n-----END CERTIFICATE-----\n'
CHAIN = '-----BEGIN CERTIFICATE-----\nMIIBintermediate\n-----END CERTIFICATE-----\n'
KEY = '-----BEGIN PRIVATE KEY-----\nMIGHsecretkeymaterial\n-----END PRIVATE KEY-----\n'
TLS_FACTS = facts_for(rule('50.0.0.1', '10.1.0.4', 443, 8443), rule('50.0.0.1', '10.1.0.4', 80, 8080),
                      rule('50.0.0.1', '10.1.0.4', 444, 9443))


def by_port(plan):
    return dict((server['port'], server) for server in plan['http_servers'])


def test_tls_from_content_lands_in_files_named_after_a_digest_and_never_in_the_plan():
    plan = nginx_listeners(TLS_FACTS, tls_dir='/etc/nginx/tls/', sites={
        8443: {'upstream': ['127.0.0.1:3000'], 'server_names': ['shop.example.com'],
               'tls': {'certificate_content': CERTIFICATE, 'chain_content': CHAIN, 'key_content': KEY,
                       'http2': True, 'hsts': True}},
        '9443': {'root': '/srv/www', 'tls': {'certificate': '/etc/ssl/shop.crt', 'key': '/etc/ssl/private/shop.key',
                                             'protocols': ['TLSv1.3']}},
        8080: {'redirect_to_https': True}})

    servers = by_port(plan)
    tls = servers[8443]['tls']
    assert re.match(r'^/etc/nginx/tls/8443-[0-9a-f]{16}\.crt$', tls['certificate'])
    assert re.match(r'^/etc/nginx/tls/8443-[0-9a-f]{16}\.key$', tls['key'])
    assert (tls['protocols'], tls['http2'], tls['hsts_max_age']) == ('TLSv1.2 TLSv1.3', True, 31536000)
    assert servers[8443]['listen_parameters'] == 'ssl http2 so_keepalive=120s:30s:3'
    assert servers[8443]['server_names'] == ['50.0.0.1', 'shop.example.com']
    assert servers[9443]['tls'] == {'certificate': '/etc/ssl/shop.crt', 'key': '/etc/ssl/private/shop.key',
                                    'protocols': 'TLSv1.3', 'http2': False, 'hsts_max_age': None}
    assert (servers[8080]['serves'], servers[8080]['redirect_port'], servers[8080]['tls']) == ('redirect', 443, None)
    installs = sorted([{'dest': tls['certificate'], 'mode': '0644', 'site_key': 8443,
                        'parts': ['certificate_content', 'chain_content'], 'paths': []},
                       {'dest': tls['key'], 'mode': '0600', 'site_key': 8443, 'parts': ['key_content'], 'paths': []}],
                      key=lambda install: install['dest'])
    assert plan['tls_files'] == {
        'installs': installs,
        'checks': [{'path': '/etc/ssl/private/shop.key', 'setting': "sites['9443'].tls.key"},
                   {'path': '/etc/ssl/shop.crt', 'setting': "sites['9443'].tls.certificate"}]}
    assert 'secretkeymaterial' not in repr(plan) and 'MIIBleaf' not in repr(plan)


def test_a_new_certificate_gets_a_new_file_so_the_one_in_use_is_never_overwritten():
    def certificate_path(certificate):
        sites = {8443: {'tls': {'certificate_content': certificate, 'key_content': KEY}}}
        return by_port(nginx_listeners(TLS_FACTS, sites=sites))[8443]['tls']['certificate']
    assert certificate_path(CERTIFICATE) != certificate_path(CHAIN)
    assert certificate_path(CERTIFICATE) == certificate_path(CERTIFICATE)


def test_a_chain_on_the_host_is_joined_into_a_file_the_role_writes():
    plan = nginx_listeners(TLS_FACTS, sites={8443: {'tls': {
        'certificate': '/etc/ssl/shop.crt', 'chain': '/etc/ssl/chain.crt', 'key': '/etc/ssl/shop.key'}}})
    tls = by_port(plan)[8443]['tls']
    assert re.match(r'^/etc/nginx/tls/8443-[0-9a-f]{16}\.fullchain\.crt$', tls['certificate'])
    (install,) = plan['tls_files']['installs']
    assert (install['dest'], install['paths'], install['parts']) == (
        tls['certificate'], ['/etc/ssl/shop.crt', '/etc/ssl/chain.crt'], [])
    assert [check['path'] for check in plan['tls_files']['checks']] == [
        '/etc/ssl/chain.crt', '/etc/ssl/shop.crt', '/etc/ssl/shop.key']


def test_default_site_tls_serves_every_port_without_a_site_from_one_certificate():
    plan = nginx_listeners(TLS_FACTS, default_site={'root': '/srv', 'tls': {'certificate_content': CERTIFICATE,
                                                                            'key_content': KEY}})
    certificates = set(server['tls']['certificate'] for server in plan['http_servers'])
    assert len(certificates) == 1 and '/default-' in certificates.pop()
    assert [entry['site_key'] for entry in plan['tls_files']['installs']] == [None, None]


BAD_TLS = [
    ('no key', {'certificate': '/c.crt'}, 'key or key_content is required'),
    ('path and content', {'certificate': '/c.crt', 'certificate_content': CERTIFICATE, 'key': '/k'}, 'either certificate'),
    ('key content not PEM', {'certificate': '/c.crt', 'key_content': 'MIGHsecretkeymaterial'}, 'the value is not shown'),
    ('relative certificate', {'certificate': 'c.crt', 'key': '/k'}, r'tls\.certificate'),
    ('chain path with content', {'certificate_content': CERTIFICATE, 'chain': '/chain', 'key': '/k'}, 'chain'),
    ('old protocol', {'certificate': '/c', 'key': '/k', 'protocols': ['TLSv1']}, r'protocols\[0\]'),
    ('no protocol', {'certificate': '/c', 'key': '/k', 'protocols': []}, 'at least one'),
    ('http2 not a boolean', {'certificate': '/c', 'key': '/k', 'http2': 'fast'}, r'tls\.http2'),
    ('unknown key', {'certificate': '/c', 'key': '/k', 'ciphers': 'ALL'}, 'unknown key'),
]


@pytest.mark.parametrize('tls, message', [(case[1], case[2]) for case in BAD_TLS], ids=[case[0] for case in BAD_TLS])
def test_unusable_tls_settings_fail_naming_them(tls, message):
    with pytest.raises(AnsibleFilterError, match=message) as caught:
        nginx_listeners(TLS_FACTS, sites={8443: {'tls': tls}})
    assert 'MIGHsecretkeymaterial' not in str(caught.value)


@pytest.mark.parametrize('site, message', [
    ({'redirect_to_https': True, 'upstream': ['127.0.0.1:1']}, 'drop upstream and root'),
    ({'redirect_to_https': True, 'tls': {'certificate': '/c', 'key': '/k'}}, 'plain HTTP ports'),
    ({'redirect_to_https': 0}, 'redirect_to_https'),
])
def test_redirects_that_make_no_sense_are_refused(site, message):
    with pytest.raises(AnsibleFilterError, match=message):
        nginx_listeners(TLS_FACTS, sites={8080: site})


def test_redirect_to_another_https_port_keeps_it():
    assert by_port(nginx_listeners(TLS_FACTS, sites={8080: {'redirect_to_https': 8443}}))[8080]['redirect_port'] == 8443


def test_tls_is_refused_on_stream_ports():
    with pytest.raises(AnsibleFilterError, match='tls only works for HTTP'):
        nginx_listeners(TLS_FACTS, stream_ports=[8443], sites={8443: {'tls': {'certificate': '/c', 'key': '/k'}}})


def tampered_facts(field, address, index=1):
    """Facts of two rules as a hand-edited fact cache could hold them: one address replaced after normalising."""
    facts = copy.deepcopy(facts_for(rule('50.0.0.1', '10.1.0.4', 80), rule('50.0.0.2', '10.1.0.5', 81)))
    facts['inbound_rules'][index][field] = address
    return facts


@pytest.mark.parametrize('address', ['169.254.169.254', '168.63.129.16', '0.0.0.0', '::', '127.0.0.1', '::1',
                                     '169.254.3.4', 'fe80::1', '224.0.0.1', 'ff05::2', '255.255.255.255'])
@pytest.mark.parametrize('field', ['frontend_ip_address', 'private_ip_address'])
def test_cached_facts_with_an_address_no_rule_can_have_are_refused(field, address):
    for floating_ip in (False, True):
        with pytest.raises(AnsibleFilterError) as caught:
            nginx_listeners(tampered_facts(field, address), floating_ip=floating_ip)
        message = str(caught.value)
        assert message.startswith('azure_loadbalancer facts cannot be used: '), message
        assert 'inbound_rules[1].%s: ' % field in message and 'which no load balancer rule carries' in message


def test_such_an_address_in_a_rule_of_another_host_still_refuses_the_facts():
    # Facts holding an address no rule can have were not written by loadbalancer_facts: none of them is trusted.
    with pytest.raises(AnsibleFilterError, match=r'inbound_rules\[1\]\.frontend_ip_address: 169\.254\.169\.254'):
        nginx_listeners(tampered_facts('frontend_ip_address', '169.254.169.254'), private_ips=['10.1.0.4'],
                        floating_ip=True)


def test_the_health_port_never_binds_such_a_private_ip():
    with pytest.raises(AnsibleFilterError, match=r'^private_ips\[1\]: 127\.0\.0\.1 is a loopback address'):
        nginx_listeners(DOCUMENTED, private_ips=['10.1.0.4', '127.0.0.1'], health_port=8081)


def test_plans_without_a_load_balanced_listener_say_so_and_what_the_facts_held():
    plan = nginx_listeners(DOCUMENTED, private_ips=['10.9.9.9'])
    assert (plan['lb_listeners'], plan['health_served']) == (0, False)
    assert plan['facts_summary'] == ('the facts hold 2 inbound rule(s), for private IP(s) 10.1.0.4, '
                                     'ace:cab:deca:deed::1; 0 of them lead to 10.9.9.9 (nginx_frontends_private_ips)')
    empty = nginx_listeners(facts_for())
    assert (empty['lb_listeners'], empty['health_served']) == (0, False)
    assert empty['facts_summary'].startswith('the facts hold 0 inbound rule(s); 0 of them lead to none')
    served = nginx_listeners(DOCUMENTED)
    assert (served['lb_listeners'], served['health_served']) == (1, True)


def test_a_stream_only_plan_serves_the_health_path_only_on_a_health_port():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 53, 53, 'udp'))
    sites = {'53/udp': {'upstream': ['10.2.0.8:53']}}
    assert nginx_listeners(facts, sites=sites)['health_served'] is False
    assert nginx_listeners(facts, sites=sites, health_port=8081)['health_served'] is True


def test_drain_is_carried_to_the_health_plan():
    assert nginx_listeners(DOCUMENTED, drain=True)['health']['drain'] is True
    assert nginx_listeners(DOCUMENTED)['health']['drain'] is False
    with pytest.raises(AnsibleFilterError, match='^drain: '):
        nginx_listeners(DOCUMENTED, drain='soon')


def test_proxy_protocol_goes_on_every_tcp_listener_and_the_health_port_but_not_udp():
    facts = facts_for(rule('50.0.0.1', '10.1.0.4', 443), rule('50.0.0.1', '10.1.0.4', 53, 53, 'all'))
    plan = nginx_listeners(facts, proxy_protocol=True, health_port=8081, stream_ports=[53],
                           sites={'53': {'upstream': ['10.2.0.8:53']}, '53/udp': {'upstream': ['10.2.0.8:53']}})
    assert only_server(plan['http_servers'])['listen_parameters'] == 'proxy_protocol so_keepalive=120s:30s:3'
    assert [(server['protocol'], server['proxy_protocol'], server['listen_parameters'])
            for server in plan['stream_servers']] == [('tcp', True, 'proxy_protocol so_keepalive=120s:30s:3'),
                                                      ('udp', False, '')]
    assert plan['health']['listen_parameters'] == 'proxy_protocol so_keepalive=120s:30s:3'
    assert plan['real_ip_from'] == ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']
    one_port = nginx_listeners(facts, sites={'443': {'proxy_protocol': True}})
    assert by_port(one_port)[443]['proxy_protocol'] is True
    with pytest.raises(AnsibleFilterError, match='TCP listeners only'):
        nginx_listeners(facts, sites={'53/udp': {'upstream': ['10.2.0.8:53'], 'proxy_protocol': True}})


def test_idle_timeout_sets_the_timeouts_and_the_tcp_keepalive():
    plan = nginx_listeners(DOCUMENTED, lb_idle_timeout=30, keepalive_timeout=600, proxy_timeout=1500)
    assert plan['timeouts'] == {'lb_idle_timeout': 30, 'keepalive': 600, 'proxy': 1500,
                                'tcp_keepalive': '120s:30s:3'}
    default = nginx_listeners(DOCUMENTED)
    assert default['timeouts'] == {'lb_idle_timeout': 4, 'keepalive': 75, 'proxy': 60, 'tcp_keepalive': '120s:30s:3'}
    off = nginx_listeners(DOCUMENTED, tcp_keepalive=False)
    assert off['timeouts']['tcp_keepalive'] is None and only_server(off['http_servers'])['listen_parameters'] == ''


@pytest.mark.parametrize('options, message', [
    (dict(lb_idle_timeout=3), r'lb_idle_timeout: expected minutes from 4 to 100'),
    (dict(lb_idle_timeout=101), r'lb_idle_timeout: expected minutes from 4 to 100'),
    (dict(keepalive_timeout=240), r'keepalive_timeout: 240 s is not below the load balancer idle timeout of 4 minutes'),
    (dict(proxy_timeout=300, lb_idle_timeout=5), r'proxy_timeout: 300 s is not below .* of 5 minutes'),
    (dict(sites={443: {'directives': ['proxy_read_timeout 5m']}}),
     r"sites\[443\]\.directives\[0\]: proxy_read_timeout 5m is not below the load balancer idle timeout"),
    (dict(sites={443: {'server_directives': ['client_body_timeout 1h']}}),
     r"sites\[443\]\.server_directives\[0\]: client_body_timeout 1h"),
    (dict(default_site={'directives': ['send_timeout 240']}), r'default_site\.directives\[0\]: send_timeout 240 '),
])
def test_timeouts_the_load_balancer_would_outlive_are_refused_with_the_reason(options, message):
    with pytest.raises(AnsibleFilterError, match=message) as caught:
        nginx_listeners(DOCUMENTED, **options)
    if 'is not below' in message:
        assert 'drops idle flows silently' in str(caught.value)


def test_timeouts_below_the_idle_timeout_are_kept():
    plan = nginx_listeners(DOCUMENTED, sites={443: {'directives': ['proxy_read_timeout 3m'],
                                                    'server_directives': ['client_max_body_size 20m',
                                                                          'keepalive_timeout 239s']}})
    server = only_server(plan['http_servers'])
    assert (server['directives'], server['server_directives']) == (
        ['proxy_read_timeout 3m'], ['client_max_body_size 20m', 'keepalive_timeout 239s'])


def test_a_thousand_rules_on_one_port_give_one_server_listing_each_frontend_once():
    rules = [rule('20.60.%d.%d' % (index // 250, index % 250 + 1), '10.1.0.4', 443, 8443) for index in range(1000)]
    server = only_server(nginx_listeners(facts_for(*(rules + rules[:10])))['http_servers'])
    assert len(server['frontends']) == 1000 and len(server['server_names']) == 1000
    assert server['listens'] == ['10.1.0.4:8443']


def test_a_site_with_only_port_settings_serves_what_default_site_serves():
    plan = nginx_listeners(TLS_FACTS, default_site={'root': '/srv/www'}, sites={
        8443: {'tls': {'certificate': '/c.crt', 'key': '/k.key'}, 'server_names': ['shop.example.com'],
               'proxy_protocol': True}})
    server = by_port(plan)[8443]
    assert (server['root'], server['serves'], server['tls']['certificate']) == ('/srv/www', 'root', '/c.crt')
    assert server['proxy_protocol'] is True and server['server_names'] == ['50.0.0.1', 'shop.example.com']
    assert by_port(plan)[8080]['tls'] is None
