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

What is refused (see docs/guide.md, "How answers are normalised"): two
spellings of one key with different values, the lists both at the top level
and inside "loadbalancer", a document with none of the lists, ports written as
JSON floats, and addresses no load balancer rule can carry. Everything runs in
O(n log n) for n entries: the largest answer IMDS may send (1 MiB) is
normalised in a fraction of a second.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import socket

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

# The lists that make a document a load balancer answer (folded spellings).
_DOCUMENT_KEYS = ('publicipaddresses', 'inboundrules', 'outboundrules', 'tunnelinterfaces')
# Microsoft's how-to (2023) and the 2021-02-01 specification example misspell one key in one entry.
_KEY_ALIASES = {'frotendipaddress': 'frontendipaddress'}

TUNNEL_TYPES = ('internal', 'external')
TUNNEL_PROTOCOLS = ('vxlan',)
MAX_VXLAN_IDENTIFIER = 2 ** 24 - 1

_TEXT_TYPES = (str,)


class LoadBalancerDataError(ValueError):
    """The load balancer document does not have a shape we can trust."""

    code = 'invalid_metadata'


class EmptyAnswerError(LoadBalancerDataError):
    """The document holds none of the lists a load balancer answer has: it says nothing."""

    code = 'empty_answer'


_FOLDED = {}


def _folded(name):
    folded = _FOLDED.get(name)
    if folded is None:
        folded = name.replace('_', '').replace('-', '').lower()
        folded = _KEY_ALIASES.get(folded, folded)
        if len(_FOLDED) < 4096:  # the names a document uses are few; a hostile one cannot grow this without end
            _FOLDED[name] = folded
    return folded


def _keys(mapping, path):
    """{folded key: (key as spelled, value)}; two spellings of one key must agree, or neither is trusted."""
    index = {}
    for key, value in mapping.items():
        if not isinstance(key, _TEXT_TYPES):
            continue
        folded = _folded(key)
        if folded in index and index[folded][1] != value:
            raise LoadBalancerDataError('%s: %s and %s are the same key with different values'
                                        % (path, _describe(index[folded][0]), _describe(key)))
        index.setdefault(folded, (key, value))
    return index


def _find(index, name):
    """(key as spelled, value) for name in a _keys() index; (name, None) when absent."""
    return index.get(_folded(name), (name, None))


def _describe(value):
    """repr() of a value for a message, capped; cut before repr so that a huge value costs nothing."""
    if isinstance(value, _TEXT_TYPES):
        value = value[:100]
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int beyond Python's digit limit, a structure too deep
        text = '<%s>' % type(value).__name__
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
    """Return the canonical text form of an IPv4 or IPv6 address (any address: see normalize_lb_address)."""
    return _canonical_address(value, path, plausible_only=False)


def normalize_lb_address(value, path):
    """The canonical text of an address a load balancer rule can carry; loopback, platform and the like are refused."""
    return _canonical_address(value, path, plausible_only=True)


def _canonical_address(value, path, plausible_only):
    """The canonical text of an address as IMDS writes it; IPv4-mapped IPv6 gives the IPv4 address.

    Dotted quads, most of any answer, are checked by number without building
    ipaddress objects: on the largest answer that is most of the time spent.
    """
    if not isinstance(value, _TEXT_TYPES):
        raise LoadBalancerDataError('%s: expected an IP address, got %s' % (path, _describe(value)))
    text = value.strip()
    if text.startswith('[') and text.endswith(']'):
        text = text[1:-1]
    number = _ipv4_number(text)
    if number is not None:
        reason = _ipv4_implausible_reason(number) if plausible_only else None
    else:
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            address = None
        # Zone indexes (fe80::1%eth0) are never load balancer addresses and carry free text.
        if address is None or getattr(address, 'scope_id', None):
            raise LoadBalancerDataError('%s: %s is not an IP address' % (path, _describe(value)))
        mapped = address.ipv4_mapped if address.version == 6 else None
        address = address if mapped is None else mapped
        text = str(address)
        reason = implausible_address_reason(address) if plausible_only else None
    if reason is not None:
        raise LoadBalancerDataError('%s: %s is %s, which no load balancer rule carries' % (path, text, reason))
    return text


def _ipv4_number(text):
    """The number of a dotted-quad IPv4 address, or None; inet_pton accepts exactly the forms ipaddress does."""
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), 'big')
    except (OSError, ValueError):
        return None


_AZURE_PLATFORM_NUMBERS = frozenset(int(address) for address in AZURE_PLATFORM_ADDRESSES)


def _ipv4_implausible_reason(number):
    """implausible_address_reason() for an IPv4 address given by number."""
    first = number >> 24
    if number in _AZURE_PLATFORM_NUMBERS:
        return 'an Azure platform address'
    if first == 0:
        return 'an unspecified address'
    if first == 127:
        return 'a loopback address'
    if number >> 16 == 0xA9FE:
        return 'a link-local address'
    if 224 <= first <= 239:
        return 'a multicast address'
    if number == 0xFFFFFFFF:
        return 'the broadcast address'
    return None


def implausible_address_reason(address):
    """Why ``address`` (an ipaddress object) can be no load balancer frontend or backend address; None if it can.

    Such an address in an answer or a fact cache would make the host bind, or
    add to an interface, an address that belongs to the host itself, to a
    multicast group, or to Azure's platform services.
    """
    mapped = getattr(address, 'ipv4_mapped', None)
    if mapped is not None:
        address = mapped
    if address.version == 4:
        return _ipv4_implausible_reason(int(address))
    if address.is_unspecified:
        return 'an unspecified address'
    if address.is_loopback:
        return 'a loopback address'
    if address.is_link_local:
        return 'a link-local address'
    if address.is_multicast:
        return 'a multicast address'
    return None


def _whole_number(value, path, what, high):
    """An int from 0 to high, from a JSON integer or a string of ASCII digits.

    Floats (80.0) are refused: Azure writes ports and identifiers as integers
    or as strings, and a float is a sign that something else wrote the answer.
    """
    if isinstance(value, _TEXT_TYPES):
        text = value.strip()
        # Short enough that int() never meets Python's limit on digits.
        if not text or len(text) > 12 or any(char not in '0123456789' for char in text):
            raise LoadBalancerDataError('%s: %s is not a %s' % (path, _describe(value), what))
        value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoadBalancerDataError('%s: expected a %s (an integer), got %s' % (path, what, _describe(value)))
    if not 0 <= value <= high:
        raise LoadBalancerDataError('%s: %s %s is outside 0-%d' % (path, what, _describe(value), high))
    return value


def normalize_port(value, path):
    """Return a port as an int from 0 to 65535; 0 stands for all ports."""
    return _whole_number(value, path, 'port number', MAX_PORT)


def normalize_protocol(value, path):
    """Return tcp, udp or all."""
    if isinstance(value, _TEXT_TYPES):
        protocol = PROTOCOL_ALIASES.get(value.strip().lower())
        if protocol is not None:
            return protocol
    raise LoadBalancerDataError('%s: unknown protocol %s (expected tcp, udp or all)' % (path, _describe(value)))


def _field(index, name, path, normalizer):
    key, value = _find(index, name)
    field_path = '%s.%s' % (path, key if len(key) <= 60 else key[:57] + '...')
    if value is None:
        raise LoadBalancerDataError('%s is missing' % field_path)
    return normalizer(value, field_path)


def _entry_keys(entry, path):
    return _keys(_require_mapping(entry, path), path)


def normalize_address_pair(entry, path):
    """A public IP or outbound rule: a frontend IP and the private IP behind it."""
    index = _entry_keys(entry, path)
    return {
        'frontend_ip_address': _field(index, 'frontendIpAddress', path, normalize_lb_address),
        'private_ip_address': _field(index, 'privateIpAddress', path, normalize_lb_address),
    }


def normalize_inbound_rule(entry, path):
    """One inbound rule with canonical addresses, lower-case protocol and int ports."""
    index = _entry_keys(entry, path)
    frontend_port = _field(index, 'frontendPort', path, normalize_port)
    backend_port = _field(index, 'backendPort', path, normalize_port)
    if (frontend_port == 0) != (backend_port == 0):
        raise LoadBalancerDataError(
            '%s: frontendPort %d and backendPort %d disagree; 0 (all ports) must be on both sides'
            % (path, frontend_port, backend_port))
    return {
        'frontend_ip_address': _field(index, 'frontendIpAddress', path, normalize_lb_address),
        'protocol': _field(index, 'protocol', path, normalize_protocol),
        'frontend_port': frontend_port,
        'backend_port': backend_port,
        'private_ip_address': _field(index, 'privateIpAddress', path, normalize_lb_address),
        'all_ports': frontend_port == 0,
    }


def _choice(choices, what):
    def normalize(value, path):
        if isinstance(value, _TEXT_TYPES) and value.strip().lower() in choices:
            return value.strip().lower()
        raise LoadBalancerDataError('%s: unknown %s %s (expected %s)' % (path, what, _describe(value), ' or '.join(choices)))
    return normalize


def _tunnel_port(value, path):
    port = normalize_port(value, path)
    if port == 0:
        raise LoadBalancerDataError('%s: a tunnel port cannot be 0' % path)
    return port


def _vxlan_identifier(value, path):
    return _whole_number(value, path, 'VXLAN identifier', MAX_VXLAN_IDENTIFIER)


def normalize_tunnel_interface(entry, path):
    """One tunnel interface of a Gateway Load Balancer: lower-case type and protocol, int ports and identifier."""
    index = _entry_keys(entry, path)
    return {
        'gateway_ip_address': _field(index, 'gatewayIpAddress', path, normalize_lb_address),
        'gateway_port': _field(index, 'gatewayPort', path, _tunnel_port),
        'identifier': _field(index, 'identifier', path, _vxlan_identifier),
        'type': _field(index, 'type', path, _choice(TUNNEL_TYPES, 'tunnel type')),
        'protocol': _field(index, 'protocol', path, _choice(TUNNEL_PROTOCOLS, 'tunnel protocol')),
        'local_ip_address': _field(index, 'localIpAddress', path, normalize_lb_address),
        'local_port': _field(index, 'localPort', path, _tunnel_port),
    }


def _ip_sort_key(text):
    number = _ipv4_number(text)
    if number is not None:
        return (4, number)
    return (6, int(ipaddress.ip_address(text)))


def _unique(items):
    """Drop repeated entries, keeping the first occurrence's position (entries are flat dicts built alike)."""
    seen = set()
    kept = []
    for item in items:
        identity = tuple(item.values())
        if identity not in seen:
            seen.add(identity)
            kept.append(item)
    return kept


def _loadbalancer_body(document):
    """The mapping that holds the lists: the "loadbalancer" object, or the document itself (2021-02-01 schema)."""
    index = _keys(_require_mapping(document, 'response'), 'response')
    top_level = [index[key][0] for key in _DOCUMENT_KEYS if key in index]
    if 'loadbalancer' in index:
        key, body = index['loadbalancer']
        if top_level:
            raise LoadBalancerDataError(
                'response: %s sit both at the top level and inside %s; only one shape can be trusted'
                % (', '.join(sorted(_describe(name) for name in top_level)), _describe(key)))
        if body is None:
            raise EmptyAnswerError('response: %s is null, so the answer says nothing about the load balancer'
                                   % _describe(key))
        return _keys(_require_mapping(body, key), key)
    if not top_level and document:
        raise LoadBalancerDataError(
            'response: no "loadbalancer" object and no rule lists in it (keys: %s)'
            % _describe(', '.join(sorted(str(name) for name in document))))
    return index


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
    if not any(body.get(key, (None, None))[1] is not None for key in _DOCUMENT_KEYS):
        raise EmptyAnswerError(
            'the answer has none of publicIpAddresses, inboundRules, outboundRules and tunnelInterfaces, so it '
            'says nothing about the load balancer (an answer with empty lists would)')
    public_ips = _entries(body, 'publicIpAddresses', normalize_address_pair)
    inbound = _entries(body, 'inboundRules', normalize_inbound_rule)
    outbound = _entries(body, 'outboundRules', normalize_address_pair)
    tunnels = _entries(body, 'tunnelInterfaces', normalize_tunnel_interface)

    frontend_ips = set(entry['frontend_ip_address'] for entry in public_ips + inbound + outbound)
    private_ips = set(entry['private_ip_address'] for entry in public_ips + inbound + outbound)
    return {
        'available': True,
        'api_version': api_version,
        'public_ip_addresses': public_ips,
        'inbound_rules': inbound,
        'outbound_rules': outbound,
        'tunnel_interfaces': tunnels,
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
    index = _keys(_require_mapping(facts, 'azure_loadbalancer'), 'azure_loadbalancer')
    available = _find(index, 'available')[1]
    if available is False:
        reason = _find(index, 'reason')[1]
        message = _find(index, 'message')[1]
        return unavailable_facts(
            reason if isinstance(reason, _TEXT_TYPES) else 'unknown',
            message if isinstance(message, _TEXT_TYPES) else '',
            _find(index, 'api_version')[1],
        )
    if available is not True:
        raise LoadBalancerDataError('azure_loadbalancer.available: expected true or false, got %s' % _describe(available))
    return normalize_loadbalancer(facts, _find(index, 'api_version')[1])
