# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters that turn azure_loadbalancer facts into nginx listeners, safely.

The documentation of each filter is in the YAML file named after it, next to
this file (nginx_listeners.yml, nginx_argument.yml).

Everything that ends up in an nginx configuration passes through here first:
facts are re-validated with the collection's normalisers, then every address,
port, name, path and directive is checked against a strict pattern, so a value
can never close a directive or a block and add its own. The filters only
compute data; the nginx_frontends role's template prints it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ipaddress
import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import (
    LoadBalancerDataError,
    normalize_ip,
    validate_facts,
)

HTTP = 'http'
TCP = 'tcp'
UDP = 'udp'

# Upstream names the template declares; the port keeps them distinct.
UPSTREAM_NAME = 'azure_lb_%s_%d'

_DIGITS = re.compile(r'^[0-9]+\Z')
_ADDRESS_TEXT = re.compile(r'^[0-9a-f.:]+\Z')
_LABEL = r'[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
_SERVER_NAME = re.compile(r'^(?:\*\.|\.)?%s(?:\.%s)*(?:\.\*)?\Z' % (_LABEL, _LABEL))
_PATH = re.compile(r'^/[A-Za-z0-9._~+@%=,:/-]*\Z')
_GLOB = re.compile(r'^/[A-Za-z0-9._~+@%=,:/*?\[\]-]*\Z')
_WORD = re.compile(r'^[A-Za-z0-9._-]+\Z')
_HEALTH_PATH = re.compile(r'^/[A-Za-z0-9._~/-]*\Z')
_SITE_KEY = re.compile(r'^\s*([0-9]{1,5})\s*(?:/\s*(tcp|udp)\s*)?\Z', re.IGNORECASE)
# One argument of a directive: a bare word, or a quoted string. Nothing in
# either may end the directive (;), open or close a block ({ }), start a
# comment (#) or escape the next character (\).
_ARGUMENT = r'''(?:[^\s;{}#'"\\]+|"[^"\n\r;{}#\\]*"|'[^'\n\r;{}#\\]*')'''
_DIRECTIVE = re.compile(r'^([a-z_][a-z0-9_]*)((?:[ \t]+%s)*)\Z' % _ARGUMENT)
_DIRECTIVE_ARGUMENT = re.compile(_ARGUMENT)
_HOST = re.compile(r'^%s(?:\.%s)*\Z' % (_LABEL, _LABEL))
_UPSTREAM_PARAMETER = re.compile(r'^[a-z_]+(?:=[A-Za-z0-9._:]+)?\Z')

SITE_KEYS = ('upstream', 'upstream_scheme', 'root', 'directives')
UPSTREAM_SCHEMES = ('http', 'https')
ARGUMENT_KINDS = ('word', 'path', 'glob', 'log')


def _fail(message):
    raise AnsibleFilterError(message)


def _describe(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + '...'


def _text_or_fail(value, where):
    if not isinstance(value, str):
        _fail('%s: expected a string, got %s' % (where, _describe(value)))
    return value


def _list_or_fail(value, where):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    _fail('%s: expected a list, got %s' % (where, _describe(value)))


def _bool_or_fail(value, where):
    try:
        return boolean(value, strict=True)
    except TypeError:
        _fail('%s: expected true or false, got %s' % (where, _describe(value)))


def _port_or_fail(value, where):
    """A listening port: 1 to 65535, as an int or a string of digits."""
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        _fail('%s: expected a port from 1 to 65535, got %s' % (where, _describe(value)))
    return value


def _address_or_fail(text, where):
    """Return the canonical address, known to be made of hex digits, dots and colons only.

    The shared normaliser decides what is an address; the character check is a
    second, independent guard for text that ends up in listen directives.
    """
    try:
        canonical = normalize_ip(text, where)
    except LoadBalancerDataError as exc:
        _fail(str(exc))
    if not _ADDRESS_TEXT.match(canonical):
        _fail('%s: %s is not a plain IPv4 or IPv6 address' % (where, _describe(text)))
    return canonical


def _is_ipv6(address):
    return ':' in address


def _bracketed(address):
    return '[%s]' % address if _is_ipv6(address) else address


def _address_sort_key(address):
    if address in ('*', '[::]'):
        return (0, 0 if address == '*' else 1, 0)
    plain = address.strip('[]')
    parsed = ipaddress.ip_address(plain)
    return (parsed.version - 3, 0, int(parsed))


def _checked_server_name(name, where):
    _text_or_fail(name, where)
    if not _SERVER_NAME.match(name):
        _fail('%s: %s is not a host name nginx can use in server_name (letters, digits, "-", "_" and dots, '
              'optionally "*." in front or ".*" at the end)' % (where, _describe(name)))
    return name.lower()


def _checked_path(value, where, pattern=_PATH):
    _text_or_fail(value, where)
    if not pattern.match(value):
        _fail('%s: %s is not an absolute path nginx can take as one argument (letters, digits and ._~+@%%=,:/- only)'
              % (where, _describe(value)))
    return value


def _checked_directive(value, where):
    """One simple directive, without its ";". Blocks are not accepted."""
    text = _text_or_fail(value, where).strip()
    if text.endswith(';'):
        text = text[:-1].rstrip()
    match = _DIRECTIVE.match(text)
    if not match:
        _fail('%s: %s is not one simple nginx directive; use "name argument ...", without ";" inside, '
              'braces, "#" or backslashes (quoted arguments are allowed)' % (where, _describe(value)))
    return ' '.join([match.group(1)] + _DIRECTIVE_ARGUMENT.findall(match.group(2)))


def _checked_upstream_server(value, where):
    """An upstream server: address:port, [IPv6]:port or unix:/path, then parameters."""
    words = _text_or_fail(value, where).split()
    if not words:
        _fail('%s: empty upstream server' % where)
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
                valid = _is_ipv6(inner) and _address_or_fail(inner, where) == inner.lower()
            except AnsibleFilterError:
                valid = False
            if not valid:
                problem = 'the bracketed host must be an IPv6 address'
        elif ':' in host or not _HOST.match(host):
            problem = 'the host must be a name, an IPv4 address or a bracketed IPv6 address'
    for parameter in parameters:
        if problem is None and not _UPSTREAM_PARAMETER.match(parameter):
            problem = 'parameter %s is not of the form name or name=value' % _describe(parameter)
    if problem:
        _fail('%s: %s is not a usable upstream server: %s' % (where, _describe(value), problem))
    return ' '.join(words)


def _checked_site(site, where, transport):
    """Validate what one listening port serves; return it with every key present."""
    if site is None:
        site = {}
    if not isinstance(site, dict):
        _fail('%s: expected a dictionary with upstream, root or directives, got %s' % (where, _describe(site)))
    unknown = sorted(str(key) for key in site if key not in SITE_KEYS)
    if unknown:
        _fail('%s: unknown key(s) %s; a site may have %s' % (where, ', '.join(unknown), ', '.join(SITE_KEYS)))
    upstream = [_checked_upstream_server(server, '%s.upstream[%d]' % (where, index))
                for index, server in enumerate(_list_or_fail(site.get('upstream'), where + '.upstream'))]
    root = site.get('root')
    scheme = site.get('upstream_scheme')
    if transport != HTTP:
        if root is not None:
            _fail('%s: root only works for HTTP listeners; %s ports can proxy to an upstream or take directives'
                  % (where, transport.upper()))
        if scheme is not None:
            _fail('%s: upstream_scheme only applies to HTTP listeners' % where)
    if root is not None:
        root = _checked_path(root, where + '.root')
        if upstream:
            _fail('%s: give either upstream or root, not both' % where)
    if scheme is None:
        scheme = 'http'
    elif scheme not in UPSTREAM_SCHEMES:
        _fail('%s.upstream_scheme: expected http or https, got %s' % (where, _describe(scheme)))
    directives = [_checked_directive(directive, '%s.directives[%d]' % (where, index))
                  for index, directive in enumerate(_list_or_fail(site.get('directives'), where + '.directives'))]
    return {'upstream': upstream, 'upstream_scheme': scheme, 'root': root, 'directives': directives}


def _site_is_empty(site):
    return not (site['upstream'] or site['root'] or site['directives'])


def _checked_sites(sites, stream_ports):
    """Validate every site, indexed by (transport, port); a plain port means TCP."""
    if sites is None:
        return {}
    if not isinstance(sites, dict):
        _fail('sites: expected a dictionary keyed by port, got %s' % _describe(sites))
    indexed = {}
    for key, site in sites.items():
        match = _SITE_KEY.match(str(key)) if isinstance(key, (str, int)) and not isinstance(key, bool) else None
        if not match:
            _fail('sites: key %s is not a port, "PORT/tcp" or "PORT/udp"' % _describe(key))
        port = _port_or_fail(int(match.group(1)), 'sites key %s' % _describe(key))
        transport = (match.group(2) or TCP).lower()
        if (transport, port) in indexed:
            _fail('sites: port %d/%s is given twice' % (port, transport))
        kind = HTTP if transport == TCP and port not in stream_ports else transport
        indexed[(transport, port)] = (str(key), _checked_site(site, 'sites[%s]' % _describe(key), kind))
    return indexed


class _Server(object):
    """One nginx server block: every listen of one (kind, port)."""

    def __init__(self, kind, port):
        self.kind = kind
        self.port = port
        self.listens = set()
        self.frontends = []
        self.frontend_ips = []

    def add(self, address, frontend):
        self.listens.add(address)
        if frontend[0] not in self.frontend_ips:
            self.frontend_ips.append(frontend[0])
        text = '%s:%s' % (_bracketed(frontend[0]), frontend[1])
        if text not in self.frontends:
            self.frontends.append(text)

    def listen_arguments(self):
        suffix = ' udp' if self.kind == UDP else ''
        return ['%s:%d%s' % (address, self.port, suffix) for address in sorted(self.listens, key=_address_sort_key)]


def _listen_address(address, listen_all_addresses):
    if listen_all_addresses:
        return '[::]' if _is_ipv6(address) else '*'
    return _bracketed(address)


def _port_list(value, where):
    return sorted(set(_port_or_fail(port, '%s[%d]' % (where, index))
                      for index, port in enumerate(_list_or_fail(value, where))))


def _rule_text(rule):
    if rule['all_ports']:
        return 'HA ports rule (%s) %s:* -> %s:*' % (
            rule['protocol'], _bracketed(rule['frontend_ip_address']), _bracketed(rule['private_ip_address']))
    return 'inbound rule (%s) %s:%d -> %s:%d' % (
        rule['protocol'], _bracketed(rule['frontend_ip_address']), rule['frontend_port'],
        _bracketed(rule['private_ip_address']), rule['backend_port'])


def _empty_plan(facts):
    return {
        'available': False,
        'reason': facts.get('reason') or 'unknown',
        'message': facts.get('message') or 'No load balancer metadata is available for this host.',
        'host_private_ips': [],
        'http_servers': [],
        'stream_servers': [],
        'health': {'path': None, 'port': None, 'listens': []},
        'loopback_addresses': [],
        'warnings': [],
    }


def nginx_listeners(facts, private_ips=None, floating_ip=False, listen_all_addresses=False, stream_ports=None,
                    ha_tcp_ports=None, ha_udp_ports=None, server_names=None, sites=None, default_site=None,
                    health_path='/healthz', health_port=None):
    """Plan nginx listeners for the inbound rules that reach this host; see nginx_listeners.yml."""
    try:
        facts = validate_facts(facts)
    except LoadBalancerDataError as exc:
        _fail('azure_loadbalancer facts cannot be used: %s' % exc)
    if not facts['available']:
        return _empty_plan(facts)

    floating_ip = _bool_or_fail(floating_ip, 'floating_ip')
    listen_all_addresses = _bool_or_fail(listen_all_addresses, 'listen_all_addresses')
    stream_ports = set(_port_list(stream_ports, 'stream_ports'))
    ha_ports = {TCP: _port_list(ha_tcp_ports, 'ha_tcp_ports'), UDP: _port_list(ha_udp_ports, 'ha_udp_ports')}
    names = []
    for index, name in enumerate(_list_or_fail(server_names, 'server_names')):
        name = _checked_server_name(name, 'server_names[%d]' % index)
        if name not in names:
            names.append(name)
    fallback_site = _checked_site(default_site, 'default_site', HTTP)
    health_path = _text_or_fail(health_path, 'health_path')
    if not _HEALTH_PATH.match(health_path):
        _fail('health_path: %s must start with "/" and hold only letters, digits and ._~/-' % _describe(health_path))
    if health_port is not None:
        health_port = _port_or_fail(health_port, 'health_port')
    site_index = _checked_sites(sites, stream_ports)

    # Every address comes out of validate_facts canonical; still hold each one
    # to the plain-address check before it can reach a listen directive.
    for index, rule in enumerate(facts['inbound_rules']):
        for key in ('frontend_ip_address', 'private_ip_address'):
            _address_or_fail(rule[key], 'azure_loadbalancer.inbound_rules[%d].%s' % (index, key))
    if private_ips:
        host_ips = []
        for index, address in enumerate(_list_or_fail(private_ips, 'private_ips')):
            address = _address_or_fail(address, 'private_ips[%d]' % index)
            if address not in host_ips:
                host_ips.append(address)
    else:
        host_ips = [_address_or_fail(address, 'azure_loadbalancer.private_ips[%d]' % index)
                    for index, address in enumerate(facts['private_ips'])]

    warnings = []
    servers = {}
    loopback = set()

    def add_listener(transport, port, rule):
        kind = HTTP if transport == TCP and port not in stream_ports else transport
        server = servers.setdefault((kind, port), _Server(kind, port))
        address = rule['frontend_ip_address'] if floating_ip else rule['private_ip_address']
        server.add(_listen_address(address, listen_all_addresses),
                   (rule['frontend_ip_address'], port if rule['all_ports'] else rule['frontend_port']))

    matched_rules = 0
    for rule in facts['inbound_rules']:
        if rule['private_ip_address'] not in host_ips:
            continue
        matched_rules += 1
        transports = (TCP, UDP) if rule['protocol'] == 'all' else (rule['protocol'],)
        if rule['all_ports']:
            chosen = [(transport, port) for transport in transports for port in ha_ports[transport]]
            if not chosen:
                warnings.append('%s covers every port; nginx cannot listen on all ports, so it is skipped. '
                                'List the ports to serve for it in ha_tcp_ports / ha_udp_ports.' % _rule_text(rule))
            for transport, port in chosen:
                add_listener(transport, port, rule)
        else:
            port = rule['frontend_port'] if floating_ip else rule['backend_port']
            for transport in transports:
                add_listener(transport, port, rule)
    if not matched_rules:
        warnings.append('No inbound rule sends traffic to %s; nginx gets no load-balanced listener.'
                        % (', '.join(host_ips) if host_ips else 'this host (the facts list no private IP)'))

    used_sites = set()
    upstream_blocks = {HTTP: [], 'stream': []}
    http_servers = []
    stream_servers = []
    for (kind, port) in sorted(servers, key=lambda key: (key[1], key[0])):
        server = servers[(kind, port)]
        site_transport = UDP if kind == UDP else TCP
        entry = site_index.get((site_transport, port))
        if entry is not None:
            used_sites.add((site_transport, port))
            site = entry[1]
        else:
            site = _checked_site(None, 'sites', kind)
        planned = {
            'port': port,
            'listens': server.listen_arguments(),
            'frontends': server.frontends,
            'upstream': None,
            'directives': site['directives'],
        }
        if kind == HTTP:
            if _site_is_empty(site):
                site = fallback_site
                planned['directives'] = site['directives']
            planned['root'] = site['root']
            planned['upstream_scheme'] = site['upstream_scheme']
            planned['server_names'] = [_bracketed(address) for address in server.frontend_ips] + names
            if site['upstream']:
                planned['upstream'] = UPSTREAM_NAME % (HTTP, port)
                upstream_blocks[HTTP].append({'name': planned['upstream'], 'servers': site['upstream']})
            http_servers.append(planned)
        else:
            planned['protocol'] = kind
            if _site_is_empty(site):
                warnings.append('%s port %d (frontends %s) has nothing to serve: give sites["%d/%s"] an upstream '
                                'or directives. It is skipped.' % (kind.upper(), port, ', '.join(server.frontends),
                                                                   port, kind))
                continue
            if site['upstream']:
                planned['upstream'] = UPSTREAM_NAME % (kind, port)
                upstream_blocks['stream'].append({'name': planned['upstream'], 'servers': site['upstream']})
            stream_servers.append(planned)
        if floating_ip:
            loopback.update(server.frontend_ips)

    for (transport, port), (key, _site) in sorted(site_index.items(), key=lambda item: (item[0][1], item[0][0])):
        if (transport, port) not in used_sites:
            warnings.append('sites[%s] matches no listener of this host; it is not used.' % _describe(key))

    health = {'path': health_path, 'port': health_port, 'listens': []}
    if health_port is not None:
        if (TCP, health_port) in servers:
            _fail('health_port %d is also a TCP stream port; the health endpoint needs HTTP' % health_port)
        addresses = set(_listen_address(address, listen_all_addresses) for address in host_ips)
        listens = ['%s:%d' % (address, health_port) for address in sorted(addresses, key=_address_sort_key)]
        shared = [server for server in http_servers if server['port'] == health_port]
        if shared:
            # The probe port is also a site port: answer on the site's server,
            # with the host's other private addresses added to it.
            merged = set(shared[0]['listens']) | set(listens)
            shared[0]['listens'] = sorted(merged, key=lambda listen: _address_sort_key(listen.rpartition(':')[0]))
        elif listens:
            health['listens'] = listens
        else:
            warnings.append('health_port %d: this host has no private IP in the facts to listen on.' % health_port)

    return {
        'available': True,
        'host_private_ips': host_ips,
        'floating_ip': floating_ip,
        'http_servers': http_servers,
        'stream_servers': stream_servers,
        'upstreams': upstream_blocks,
        'health': health,
        'loopback_addresses': sorted(loopback, key=_address_sort_key),
        'warnings': warnings,
    }


def nginx_argument(value, kind, name='value'):
    """Return value as text when it is safe as one nginx argument of this kind; see nginx_argument.yml."""
    if kind not in ARGUMENT_KINDS:
        _fail('nginx_argument: kind must be one of %s, got %s' % (', '.join(ARGUMENT_KINDS), _describe(kind)))
    if isinstance(value, int) and not isinstance(value, bool) and kind == 'word':
        value = str(value)
    _text_or_fail(value, name)
    if kind == 'word':
        if not _WORD.match(value):
            _fail('%s: %s must be one word of letters, digits and ._- only' % (name, _describe(value)))
        return value
    if kind == 'log' and value in ('stderr', 'off'):
        return value
    return _checked_path(value, name, _GLOB if kind == 'glob' else _PATH)


class FilterModule(object):

    def filters(self):
        return {
            'nginx_listeners': nginx_listeners,
            'nginx_argument': nginx_argument,
        }
