# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The checks that keep values from changing the structure of nginx.conf."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.imds.azure.plugins.plugin_utils._nginx_syntax import (
    bindable_or_fail,
    directive_or_fail,
    missing_addresses,
    network_or_fail,
    pem_or_fail,
    plain_address_or_fail,
    time_seconds,
)

IP_OUTPUT = (
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
    "1: lo    inet 50.0.0.31/32 scope global lo\\       valid_lft forever preferred_lft forever\n"
    "1: lo    inet6 ::50.0.0.7/128 scope global \\       valid_lft forever preferred_lft forever\n"
    "1: lo    inet6 2603:10e1:100:2::1:1/128 scope global \\       valid_lft forever preferred_lft forever\n"
    "1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever\n"
)


def test_missing_addresses_compares_parsed_addresses_not_text():
    wanted = ['50.0.0.31', '::3200:7', '2603:10E1:100:2:0:0:1:1', '50.0.0.32', '2603:10e1::9', '50.0.0.32']
    assert missing_addresses(IP_OUTPUT, wanted) == ['50.0.0.32', '2603:10e1::9']


def test_missing_addresses_of_an_empty_interface_are_all_of_them():
    assert missing_addresses('', ['50.0.0.1', '::ffff:50.0.0.2']) == ['50.0.0.1', '50.0.0.2']


def test_missing_addresses_refuses_text_that_is_no_address():
    with pytest.raises(AnsibleFilterError, match=r'addresses\[0\]'):
        missing_addresses(IP_OUTPUT, ['50.0.0.1/32 dev eth0'])


@pytest.mark.parametrize('address, reason', [
    ('169.254.169.254', 'an Azure platform address'),
    ('168.63.129.16', 'an Azure platform address'),
    ('0.0.0.0', 'an unspecified address'),
    ('::', 'an unspecified address'),
    ('127.0.0.9', 'a loopback address'),
    ('::1', 'a loopback address'),
    ('169.254.10.1', 'a link-local address'),
    ('fe80::1', 'a link-local address'),
    ('224.0.0.18', 'a multicast address'),
    ('ff02::1', 'a multicast address'),
    ('255.255.255.255', 'the broadcast address'),
])
def test_addresses_no_rule_can_have_are_refused_naming_the_field(address, reason):
    with pytest.raises(AnsibleFilterError) as caught:
        bindable_or_fail(address, 'rules[3].frontend_ip_address')
    assert str(caught.value).startswith('rules[3].frontend_ip_address: %s is %s' % (address, reason))


@pytest.mark.parametrize('address', ['50.0.0.1', '10.1.0.4', '2603:10e1:100:2::1:1', 'ace:cab:deca:deed::1'])
def test_frontend_and_private_addresses_pass(address):
    assert bindable_or_fail(address, 'x') == address


@pytest.mark.parametrize('value', ['10.1.0.4 ssl', '10.1.0.4;', 'FE80::1', 42])
def test_plain_address_check_refuses_anything_but_canonical_characters(value):
    with pytest.raises(AnsibleFilterError, match='^where: '):
        plain_address_or_fail(value, 'where')


@pytest.mark.parametrize('text, seconds', [
    ('75', 75), ('75s', 75), ('4m', 240), ('1m30s', 90), ('500ms', 0.5), ('1h', 3600), ('1d', 86400),
    ('$timeout', None), ('4 m', None), ('', None),
])
def test_time_values_are_read_like_nginx(text, seconds):
    assert time_seconds(text) == seconds


def test_directives_come_back_as_name_and_arguments():
    assert directive_or_fail('add_header  X-Frame-Options "DENY" always;', 'd') == (
        'add_header', ['X-Frame-Options', '"DENY"', 'always'])


def test_pem_errors_never_show_the_value():
    secret = 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC-not-really-a-key'
    with pytest.raises(AnsibleFilterError) as caught:
        pem_or_fail(secret, 'sites[443].tls.key_content', 'PRIVATE KEY')
    assert secret not in str(caught.value) and 'MIIE' not in str(caught.value)
    assert 'sites[443].tls.key_content' in str(caught.value)
    key = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n'
    assert pem_or_fail(key, 'k', 'PRIVATE KEY') == key


@pytest.mark.parametrize('value, canonical', [('10.0.0.0/8', '10.0.0.0/8'), ('10.1.2.3/8', '10.0.0.0/8'),
                                              ('FC00::/7', 'fc00::/7'), ('203.0.113.7', '203.0.113.7/32')])
def test_networks_are_canonical(value, canonical):
    assert network_or_fail(value, 'n') == canonical


def test_a_network_with_a_directive_is_refused():
    with pytest.raises(AnsibleFilterError, match=r'^proxy_protocol_trusted\[0\]: '):
        network_or_fail('10.0.0.0/8; allow all', 'proxy_protocol_trusted[0]')
