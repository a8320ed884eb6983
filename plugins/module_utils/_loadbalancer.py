# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure functions that turn an IMDS load balancer document into facts.

Nothing here does I/O. Every function either returns plain data or raises
LoadBalancerDataError with a message that names the offending field, so the
callers can fail cleanly without partial results.

Real IMDS answers differ from the documented sample: values in other letter
cases, ports as strings, IPv6 addresses written long-hand or in upper case,
lists that are null or missing, keys added by newer load balancer kinds, and
all-ports (HA ports) rules. Keys are therefore matched without regard to case,
underscores or dashes, unknown keys are ignored, and values are canonicalised.
Because of that key matching, the same functions also re-validate facts that
were produced earlier (for example read back from a fact cache).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress

from ansible_collections.imds.azure.plugins.module_utils._facts_shape import unavailable_facts

PROTOCOL_ALIASES = {
    'tcp': 'tcp',
    'udp': 'udp',
    'all': 'all',
    'any': 'all',
    '*': 'all',
}

MAX_PORT = 65535

# Azure's own services: the platform DNS, health probe source and wireserver,
# and IMDS. No load balancer frontend or backend is ever one of them.
AZURE_PLATFORM_ADDRESSES = frozenset((
    ipaddress.ip_address('168.63.129.16'),
    ipaddress.ip_address('169.254.169.254'),
))
_IPV4_THIS_NETWORK = ipaddress.ip_network('0.0.0.0/8')
_IPV4_BROADCAST = ipaddress.ip_address('255.255.255.255')

_DOCUMENT_KEYS = ('publicipaddresses', 'inboundrules', 'outboundrules')

_TEXT_TYPES = (str,)


class LoadBalancerDataError(ValueError):
    """The load balancer document does not have a shape we can trust."""


def _folded(name):
    return name.replace('_', '').replace('-', '').lower()


def _find(mapping, name):
    """Return (key as spelled in mapping, value) for name, matching keys loosely; (name, None) when absent."""
    wanted = _folded(name)
    for key, value in mapping.items():
        if isinstance(key, _TEXT_TYPES) and _folded(key) == wanted:
            return key, value
    return name, None


def _lookup(mapping, name):
    return _find(mapping, name)[1]


def _describe(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


def _as_list(value, path):
    """Null or missing means empty; a lone object stands for a one-item list."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return value
    raise LoadBalancerDataError('%s: expected a list, got %s' % (path, _describe(value)))


def _require_mapping(value, path):
    if not isinstance(value, dict):
        raise LoadBalancerDataError('%s: expected an object, got %s' % (path, _describe(value)))
    return value


def normalize_ip(value, path):
    """Return the canonical text form of an IPv4 or IPv6 address."""
    if not isinstance(value, _TEXT_TYPES):
        raise LoadBalancerDataError('%s: expected an IP address, got %s' % (path, _describe(value)))
    text = value.strip()
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    # Zone indexes (fe80::1%eth0) are never load balancer addresses and carry free text.
    if address is None or getattr(address, 'scope_id', None):
        raise LoadBalancerDataError('%s: %s is not an IP address' % (path, _describe(value)))
    mapped = getattr(address, 'ipv4_mapped', None)
    if mapped is not None:
        address = mapped
    return str(address)


def implausible_address_reason(address):
    """Why ``address`` (an ipaddress object) can be no load balancer frontend or backend address; None if it can.

    Such an address in an answer or a fact cache would make the host bind, or
    add to an interface, an address that belongs to the host itself, to a
    multicast group, or to Azure's platform services.
    """
    mapped = getattr(address, 'ipv4_mapped', None)
    if mapped is not None:
        address = mapped
    if address in AZURE_PLATFORM_ADDRESSES:
        return 'an Azure platform address'
    if address.is_unspecified or (address.version == 4 and address in _IPV4_THIS_NETWORK):
        return 'an unspecified address'
    if address.is_loopback:
        return 'a loopback address'
    if address.is_link_local:
        return 'a link-local address'
    if address.is_multicast:
        return 'a multicast address'
    if address == _IPV4_BROADCAST:
        return 'the broadcast address'
    return None


def normalize_port(value, path):
    """Return a port as an int from 0 to 65535; 0 stands for all ports."""
    if isinstance(value, bool):
        raise LoadBalancerDataError('%s: expected a port number, got %s' % (path, _describe(value)))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, _TEXT_TYPES):
        text = value.strip()
        if not text or any(char not in '0123456789' for char in text):
            raise LoadBalancerDataError('%s: %s is not a port number' % (path, _describe(value)))
        value = int(text)
    if not isinstance(value, int):
        raise LoadBalancerDataError('%s: expected a port number, got %s' % (path, _describe(value)))
    if not 0 <= value <= MAX_PORT:
        raise LoadBalancerDataError('%s: port %d is outside 0-%d' % (path, value, MAX_PORT))
    return value


def normalize_protocol(value, path):
    """Return tcp, udp or all."""
    if isinstance(value, _TEXT_TYPES):
        protocol = PROTOCOL_ALIASES.get(value.strip().lower())
        if protocol is not None:
            return protocol
    raise LoadBalancerDataError('%s: unknown protocol %s (expected tcp, udp or all)' % (path, _describe(value)))


def _field(entry, name, path, normalizer):
    key, value = _find(entry, name)
    field_path = '%s.%s' % (path, key)
    if value is None:
        raise LoadBalancerDataError('%s is missing' % field_path)
    return normalizer(value, field_path)


def normalize_address_pair(entry, path):
    """A public IP or outbound rule: a frontend IP and the private IP behind it."""
    _require_mapping(entry, path)
    return {
        'frontend_ip_address': _field(entry, 'frontendIpAddress', path, normalize_ip),
        'private_ip_address': _field(entry, 'privateIpAddress', path, normalize_ip),
    }


def normalize_inbound_rule(entry, path):
    """One inbound rule with canonical addresses, lower-case protocol and int ports."""
    _require_mapping(entry, path)
    frontend_port = _field(entry, 'frontendPort', path, normalize_port)
    backend_port = _field(entry, 'backendPort', path, normalize_port)
    if (frontend_port == 0) != (backend_port == 0):
        raise LoadBalancerDataError(
            '%s: frontendPort %d and backendPort %d disagree; 0 (all ports) must be on both sides'
            % (path, frontend_port, backend_port))
    return {
        'frontend_ip_address': _field(entry, 'frontendIpAddress', path, normalize_ip),
        'protocol': _field(entry, 'protocol', path, normalize_protocol),
        'frontend_port': frontend_port,
        'backend_port': backend_port,
        'private_ip_address': _field(entry, 'privateIpAddress', path, normalize_ip),
        'all_ports': frontend_port == 0,
    }


def _ip_sort_key(text):
    address = ipaddress.ip_address(text)
    return (address.version, int(address))


def _unique(items):
    """Drop repeated entries (flat dicts of scalars), keeping the first occurrence's position; O(n)."""
    seen = set()
    unique = []
    for item in items:
        key = tuple(sorted(item.items()))
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _loadbalancer_body(document):
    _require_mapping(document, 'response')
    if any(_lookup(document, key) is not None for key in _DOCUMENT_KEYS):
        return document  # the outer "loadbalancer" key is missing
    key, body = _find(document, 'loadbalancer')
    if key in document and body is None:
        return {}
    if body is None:
        if document:
            raise LoadBalancerDataError(
                'response: no "loadbalancer" object and no rule lists in it (keys: %s)'
                % ', '.join(sorted(str(name) for name in document)))
        return {}
    return _require_mapping(body, key)


def _entries(body, name, normalizer):
    key, value = _find(body, name)
    return _unique(
        normalizer(entry, '%s[%d]' % (key, index))
        for index, entry in enumerate(_as_list(value, key))
    )


def _group(rules, key):
    groups = {}
    for rule in rules:
        groups.setdefault(str(rule[key]), []).append(rule)
    return groups


def normalize_loadbalancer(document, api_version):
    """Turn the JSON of /metadata/loadbalancer into the azure_loadbalancer facts.

    Raises LoadBalancerDataError when anything in it cannot be trusted; in that
    case no facts at all should be reported.
    """
    body = _loadbalancer_body(document)
    public_ips = _entries(body, 'publicIpAddresses', normalize_address_pair)
    inbound = _entries(body, 'inboundRules', normalize_inbound_rule)
    outbound = _entries(body, 'outboundRules', normalize_address_pair)

    frontend_ips = set(entry['frontend_ip_address'] for entry in public_ips + inbound + outbound)
    private_ips = set(entry['private_ip_address'] for entry in public_ips + inbound + outbound)
    return {
        'available': True,
        'api_version': api_version,
        'public_ip_addresses': public_ips,
        'inbound_rules': inbound,
        'outbound_rules': outbound,
        'frontend_ips': sorted(frontend_ips, key=_ip_sort_key),
        'private_ips': sorted(private_ips, key=_ip_sort_key),
        'backend_ports': sorted(set(rule['backend_port'] for rule in inbound if rule['backend_port'])),
        'inbound_rules_by_private_ip': _group(inbound, 'private_ip_address'),
        'inbound_rules_by_backend_port': _group(inbound, 'backend_port'),
    }


def validate_facts(facts):
    """Re-check azure_loadbalancer facts (e.g. from a fact cache) before use.

    Returns freshly normalised facts, so anything that passed through a cache
    or a hand-written vars file is held to the same rules as live IMDS data.
    """
    _require_mapping(facts, 'azure_loadbalancer')
    available = _lookup(facts, 'available')
    if available is False:
        reason = _lookup(facts, 'reason')
        message = _lookup(facts, 'message')
        return unavailable_facts(
            reason if isinstance(reason, _TEXT_TYPES) else 'unknown',
            message if isinstance(message, _TEXT_TYPES) else '',
            _lookup(facts, 'api_version'),
        )
    if available is not True:
        raise LoadBalancerDataError('azure_loadbalancer.available: expected true or false, got %s' % _describe(available))
    return normalize_loadbalancer(facts, _lookup(facts, 'api_version'))
