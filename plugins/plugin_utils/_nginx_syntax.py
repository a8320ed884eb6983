# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Checks that keep values from changing the structure of an nginx configuration.

Every value the nginx_frontends role writes into nginx.conf passes one of these
checks first: a value that passes can neither end a directive, nor open or
close a block, nor start a comment. Each check either returns the value in the
form to print or raises AnsibleFilterError with a message that names the
setting and echoes at most a short excerpt of the value.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import functools
import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import (
    LoadBalancerDataError,
    _describe as describe,
    implausible_address_reason,
    normalize_ip,
)

_DIGITS = re.compile(r'^[0-9]+\Z')
_ADDRESS_TEXT = re.compile(r'^[0-9a-f.:]+\Z')
_LABEL = r'[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
_SERVER_NAME = re.compile(r'^(?:\*\.|\.)?%s(?:\.%s)*(?:\.\*)?\Z' % (_LABEL, _LABEL))
_PATH = re.compile(r'^/[A-Za-z0-9._~+@%=,:/-]*\Z')
_GLOB = re.compile(r'^/[A-Za-z0-9._~+@%=,:/*?\[\]-]*\Z')
_WORD = re.compile(r'^[A-Za-z0-9._-]+\Z')
_HEALTH_PATH = re.compile(r'^/[A-Za-z0-9._~/-]*\Z')
# One argument of a directive: a bare word, or a quoted string. Nothing in
# either may end the directive (;), open or close a block ({ }), start a
# comment (#) or escape the next character (\).
_ARGUMENT = r'''(?:[^\s;{}#'"\\]+|"[^"\n\r;{}#\\]*"|'[^'\n\r;{}#\\]*')'''
_DIRECTIVE = re.compile(r'^([a-z_][a-z0-9_]*)((?:[ \t]+%s)*)\Z' % _ARGUMENT)
_DIRECTIVE_ARGUMENT = re.compile(_ARGUMENT)
_HOST = re.compile(r'^%s(?:\.%s)*\Z' % (_LABEL, _LABEL))
_UPSTREAM_PARAMETER = re.compile(r'^[a-z_]+(?:=[A-Za-z0-9._:]+)?\Z')
# nginx time values: "75", "75s", "1m30s", "500ms"...
_TIME = re.compile(r'^(?:[0-9]+(?:ms|[smhdwMy])?)+\Z')
_TIME_PART = re.compile(r'([0-9]+)(ms|[smhdwMy])?')
_TIME_UNITS = {'ms': 0.001, 's': 1, None: 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800, 'M': 2592000,
               'y': 31536000}

ARGUMENT_KINDS = ('word', 'path', 'glob', 'log')


def fail(message):
    raise AnsibleFilterError(message)


def text_or_fail(value, where):
    if not isinstance(value, str):
        fail('%s: expected a string, got %s' % (where, describe(value)))
    return value


def list_or_fail(value, where):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    fail('%s: expected a list, got %s' % (where, describe(value)))


def dict_or_fail(value, where, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail('%s: expected a dictionary with %s, got %s' % (where, what, describe(value)))
    return value


def bool_or_fail(value, where):
    try:
        return boolean(value, strict=True)
    except TypeError:
        fail('%s: expected true or false, got %s' % (where, describe(value)))


def int_or_fail(value, where, lowest, highest, what='a number'):
    """An int from lowest to highest, given as an int or a string of ASCII digits."""
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= highest:
        fail('%s: expected %s from %d to %d, got %s' % (where, what, lowest, highest, describe(value)))
    return value


def port_or_fail(value, where):
    """A listening port: 1 to 65535."""
    return int_or_fail(value, where, 1, 65535, 'a port')


def address_or_fail(text, where):
    """Return the canonical address, known to be made of hex digits, dots and colons only.

    The shared normaliser decides what is an address; the character check is a
    second, independent guard for text that ends up in listen directives.
    """
    try:
        canonical = normalize_ip(text, where)
    except LoadBalancerDataError as exc:
        fail(str(exc))
    if not _ADDRESS_TEXT.match(canonical):
        fail('%s: %s is not a plain IPv4 or IPv6 address' % (where, describe(text)))
    return canonical


def plain_address_or_fail(canonical, where):
    """The character check alone, for addresses the shared normaliser has already made canonical."""
    if not isinstance(canonical, str) or not _ADDRESS_TEXT.match(canonical):
        fail('%s: %s is not a plain IPv4 or IPv6 address' % (where, describe(canonical)))
    return canonical


@functools.lru_cache(maxsize=4096)
def _implausible(canonical):
    return implausible_address_reason(ipaddress.ip_address(canonical))


def bindable_or_fail(canonical, where):
    """Refuse an address no load balancer frontend or backend can have, before it is bound or added to an interface."""
    reason = _implausible(canonical)
    if reason:
        fail('%s: %s is %s, which no Azure load balancer rule uses; nginx_frontends never binds it or adds it to '
             'an interface' % (where, canonical, reason))
    return canonical


def is_ipv6(address):
    return ':' in address


def bracketed(address):
    return '[%s]' % address if is_ipv6(address) else address


@functools.lru_cache(maxsize=4096)
def address_sort_key(address):
    """Sort key for listen addresses: wildcards first, then IPv4, then IPv6, numerically."""
    if address in ('*', '[::]'):
        return (0, 0 if address == '*' else 1, 0)
    parsed = ipaddress.ip_address(address.strip('[]'))
    return (parsed.version - 3, 0, int(parsed))


def server_name_or_fail(name, where):
    text_or_fail(name, where)
    if not _SERVER_NAME.match(name):
        fail('%s: %s is not a host name nginx can use in server_name (letters, digits, "-", "_" and dots, '
             'optionally "*." in front or ".*" at the end)' % (where, describe(name)))
    return name.lower()


def path_or_fail(value, where, pattern=_PATH):
    text_or_fail(value, where)
    if not pattern.match(value):
        fail('%s: %s is not an absolute path nginx can take as one argument (letters, digits and ._~+@%%=,:/- only)'
             % (where, describe(value)))
    return value


def health_path_or_fail(value, where):
    text_or_fail(value, where)
    if not _HEALTH_PATH.match(value):
        fail('%s: %s must start with "/" and hold only letters, digits and ._~/-' % (where, describe(value)))
    return value


def directive_or_fail(value, where):
    """One simple directive, without its ";", as (name, arguments). Blocks are not accepted."""
    text = text_or_fail(value, where).strip()
    if text.endswith(';'):
        text = text[:-1].rstrip()
    match = _DIRECTIVE.match(text)
    if not match:
        fail('%s: %s is not one simple nginx directive; use "name argument ...", without ";" inside, '
             'braces, "#" or backslashes (quoted arguments are allowed)' % (where, describe(value)))
    return match.group(1), _DIRECTIVE_ARGUMENT.findall(match.group(2))


def time_seconds(text):
    """Seconds in an nginx time value such as "75s" or "1m30s"; None when it is not one."""
    if not _TIME.match(text):
        return None
    return sum(int(number) * _TIME_UNITS[unit or None] for number, unit in _TIME_PART.findall(text))


def upstream_server_or_fail(value, where):
    """An upstream server: address:port, [IPv6]:port or unix:/path, then parameters."""
    words = text_or_fail(value, where).split()
    if not words:
        fail('%s: empty upstream server' % where)
    address, parameters = words[0], words[1:]
    problem = None
    if address.startswith('unix:'):
        if not _PATH.match(address[5:]):
            problem = 'unix: must be followed by an absolute socket path'
    else:
        host, sep, port = address.rpartition(':')
        if not sep or not _DIGITS.match(port) or not 1 <= int(port) <= 65535:
            problem = 'expected host:port with a port from 1 to 65535'
        elif host.startswith('[') and host.endswith(']'):
            inner = host[1:-1]
            try:
                valid = is_ipv6(inner) and address_or_fail(inner, where) == inner.lower()
            except AnsibleFilterError:
                valid = False
            if not valid:
                problem = 'the bracketed host must be an IPv6 address'
        elif ':' in host or not _HOST.match(host):
            problem = 'the host must be a name, an IPv4 address or a bracketed IPv6 address'
    for parameter in parameters:
        if problem is None and not _UPSTREAM_PARAMETER.match(parameter):
            problem = 'parameter %s is not of the form name or name=value' % describe(parameter)
    if problem:
        fail('%s: %s is not a usable upstream server: %s' % (where, describe(value), problem))
    return ' '.join(words)


def network_or_fail(value, where):
    """An address or network in CIDR notation, canonical, for set_real_ip_from."""
    text_or_fail(value, where)
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        fail('%s: %s is not an IP address or network (CIDR)' % (where, describe(value)))
    return str(network)


def pem_or_fail(value, where, label):
    """PEM text holding a block whose label ends in label; the text itself is never echoed (it may be a key)."""
    if not isinstance(value, str) or '-----BEGIN ' not in value or ('%s-----' % label) not in value:
        fail('%s: expected PEM text with a "%s" block (the value is not shown)' % (where, label))
    return value


def nginx_argument(value, kind, name='value'):
    """Return value as text when it is safe as one nginx argument of this kind; see nginx_argument.yml."""
    if kind not in ARGUMENT_KINDS:
        fail('nginx_argument: kind must be one of %s, got %s' % (', '.join(ARGUMENT_KINDS), describe(kind)))
    if isinstance(value, int) and not isinstance(value, bool) and kind == 'word':
        value = str(value)
    text_or_fail(value, name)
    if kind == 'word':
        if not _WORD.match(value):
            fail('%s: %s must be one word of letters, digits and ._- only' % (name, describe(value)))
        return value
    if kind == 'log' and value in ('stderr', 'off'):
        return value
    return path_or_fail(value, name, _GLOB if kind == 'glob' else _PATH)


def missing_addresses(ip_output, addresses):
    """The addresses (canonical text) that ``ip -o addr show`` output does not list, in any spelling."""
    present = set()
    for line in text_or_fail(ip_output, 'ip_output').splitlines():
        words = line.split()
        for index, word in enumerate(words[:-1]):
            if word in ('inet', 'inet6'):
                try:
                    present.add(ipaddress.ip_address(words[index + 1].split('/')[0]))
                except ValueError:
                    pass
    missing = []
    for index, address in enumerate(list_or_fail(addresses, 'addresses')):
        canonical = address_or_fail(address, 'addresses[%d]' % index)
        if ipaddress.ip_address(canonical) not in present and canonical not in missing:
            missing.append(canonical)
    return missing
