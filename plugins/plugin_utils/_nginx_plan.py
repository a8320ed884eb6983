# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The listener planner behind the nginx_listeners filter.

It turns azure_loadbalancer facts and the role's settings into plain data that
the nginx_frontends template prints. The work is done in named steps:

1. ``_Settings``: every option checked once (ports, names, sites, TLS, timeouts).
2. ``_collect_listeners``: the inbound rules of this host's private IPs, grouped
   into one server per (kind, port), every bound address held to the
   plausibility check.
3. ``_server_plans``: what each server serves, from its site.
4. ``_health_plan``: the probe endpoint and its listeners.
5. ``_tls_files``: the certificate and key files the role installs.

Every step keeps its collections in dicts and sets, and sorts each result once,
so a plan costs O(n log n) in the number of rules.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import hashlib
import re

from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import (
    LoadBalancerDataError,
    validate_facts,
)
from ansible_collections.imds.azure.plugins.plugin_utils._nginx_syntax import (
    address_or_fail,
    address_sort_key,
    bindable_or_fail,
    bool_or_fail,
    bracketed,
    describe,
    dict_or_fail,
    directive_or_fail,
    fail,
    health_path_or_fail,
    int_or_fail,
    is_ipv6,
    list_or_fail,
    network_or_fail,
    path_or_fail,
    plain_address_or_fail,
    pem_or_fail,
    port_or_fail,
    server_name_or_fail,
    time_seconds,
    upstream_server_or_fail,
)

HTTP = 'http'
TCP = 'tcp'
UDP = 'udp'

# Upstream names the template declares; the port keeps them distinct.
UPSTREAM_NAME = 'azure_lb_%s_%d'

SITE_KEYS = ('upstream', 'upstream_scheme', 'root', 'directives', 'server_directives', 'server_names', 'tls',
             'redirect_to_https', 'proxy_protocol')
TLS_KEYS = ('certificate', 'key', 'chain', 'certificate_content', 'key_content', 'chain_content', 'protocols',
            'http2', 'hsts', 'hsts_max_age')
UPSTREAM_SCHEMES = ('http', 'https')
TLS_PROTOCOLS = ('TLSv1.2', 'TLSv1.3')
DEFAULT_TLS_PROTOCOLS = ['TLSv1.2', 'TLSv1.3']
HSTS_MAX_AGE = 31536000
# Azure Load Balancer rule idle timeout, in minutes.
IDLE_TIMEOUT_RANGE = (4, 100)
# Directives whose time must stay below the idle timeout: past it Azure drops
# the flow without telling either side.
TIMEOUT_DIRECTIVES = ('keepalive_timeout', 'proxy_read_timeout', 'proxy_send_timeout', 'proxy_timeout',
                      'client_body_timeout', 'client_header_timeout', 'send_timeout')
# TCP keepalive probes on every TCP listener: the first after half the idle
# timeout (at most 2 minutes), then every 30 s, 3 times.
TCP_KEEPALIVE_INTERVAL = 30
TCP_KEEPALIVE_PROBES = 3
DEFAULT_REAL_IP_FROM = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']

_SITE_KEY = re.compile(r'^\s*([0-9]{1,5})\s*(?:/\s*(tcp|udp)\s*)?\Z', re.IGNORECASE)


# --------------------------------------------------------------------------- step 1: settings


class _Timeouts(object):
    """The load balancer idle timeout and the nginx timeouts kept below it."""

    def __init__(self, idle_minutes, keepalive_timeout, proxy_timeout, tcp_keepalive):
        self.idle_minutes = int_or_fail(idle_minutes, 'lb_idle_timeout', IDLE_TIMEOUT_RANGE[0],
                                        IDLE_TIMEOUT_RANGE[1], 'minutes')
        self.idle_seconds = self.idle_minutes * 60
        self.keepalive = self._below_idle(int_or_fail(keepalive_timeout, 'keepalive_timeout', 0, 86400, 'seconds'),
                                          'keepalive_timeout')
        self.proxy = self._below_idle(int_or_fail(proxy_timeout, 'proxy_timeout', 1, 86400, 'seconds'),
                                      'proxy_timeout')
        self.tcp_keepalive = None
        if bool_or_fail(tcp_keepalive, 'tcp_keepalive'):
            first_probe = min(self.idle_seconds // 2, 120)
            self.tcp_keepalive = '%ds:%ds:%d' % (first_probe, TCP_KEEPALIVE_INTERVAL, TCP_KEEPALIVE_PROBES)

    def _below_idle(self, seconds, where):
        if seconds >= self.idle_seconds:
            fail('%s: %s s is not below the load balancer idle timeout of %d minutes (lb_idle_timeout); Azure drops '
                 'idle flows silently after it, so nginx would keep connections the load balancer has forgotten. '
                 'Lower it, or raise the rule\'s idle timeout and lb_idle_timeout with it'
                 % (where, seconds, self.idle_minutes))
        return seconds

    def check_directive(self, name, arguments, where):
        if name not in TIMEOUT_DIRECTIVES or not arguments:
            return
        seconds = time_seconds(arguments[0])
        if seconds is not None and seconds >= self.idle_seconds:
            fail('%s: %s %s is not below the load balancer idle timeout of %d minutes (lb_idle_timeout); Azure drops '
                 'idle flows silently after it. Lower it, or raise the rule\'s idle timeout and lb_idle_timeout '
                 'with it' % (where, name, arguments[0], self.idle_minutes))

    def as_plan(self):
        return {'lb_idle_timeout': self.idle_minutes, 'keepalive': self.keepalive, 'proxy': self.proxy,
                'tcp_keepalive': self.tcp_keepalive}


def _port_list(value, where):
    return sorted(set(port_or_fail(port, '%s[%d]' % (where, index))
                      for index, port in enumerate(list_or_fail(value, where))))


def _server_names(value, where):
    names = {}
    for index, name in enumerate(list_or_fail(value, where)):
        names.setdefault(server_name_or_fail(name, '%s[%d]' % (where, index)), None)
    return list(names)


def _directives(value, where, timeouts):
    checked = []
    for index, directive in enumerate(list_or_fail(value, where)):
        name, arguments = directive_or_fail(directive, '%s[%d]' % (where, index))
        timeouts.check_directive(name, arguments, '%s[%d]' % (where, index))
        checked.append(' '.join([name] + arguments))
    return checked


def _checked_tls(tls, where, default_protocols):
    """TLS settings of one site: files on the host, or content the role installs."""
    tls = dict_or_fail(tls, where, 'certificate and key')
    unknown = sorted(str(key) for key in tls if key not in TLS_KEYS)
    if unknown:
        fail('%s: unknown key(s) %s; tls may have %s' % (where, ', '.join(unknown), ', '.join(TLS_KEYS)))
    checked = {'paths': {}, 'content': {}}
    for part in ('certificate', 'key', 'chain'):
        path, content = tls.get(part), tls.get(part + '_content')
        if path is not None and content is not None:
            fail('%s: give either %s or %s_content, not both' % (where, part, part))
        if path is not None:
            checked['paths'][part] = path_or_fail(path, '%s.%s' % (where, part))
        elif content is not None:
            label = 'PRIVATE KEY' if part == 'key' else 'CERTIFICATE'
            checked['content'][part] = pem_or_fail(content, '%s.%s_content' % (where, part), label)
    for part in ('certificate', 'key'):
        if part not in checked['paths'] and part not in checked['content']:
            fail('%s: %s or %s_content is required' % (where, part, part))
    if 'chain' in checked['paths'] and 'certificate' not in checked['paths']:
        fail('%s: chain (a path) goes with certificate (a path); with certificate_content use chain_content' % where)
    if 'chain' in checked['content'] and 'certificate' not in checked['content']:
        fail('%s: chain_content goes with certificate_content; with certificate (a path) use chain' % where)
    protocols = tls.get('protocols')
    if protocols is None:
        protocols = default_protocols
    protocols = list_or_fail(protocols, where + '.protocols')
    for index, protocol in enumerate(protocols):
        if protocol not in TLS_PROTOCOLS:
            fail('%s.protocols[%d]: expected one of %s, got %s'
                 % (where, index, ', '.join(TLS_PROTOCOLS), describe(protocol)))
    if not protocols:
        fail('%s.protocols: give at least one of %s' % (where, ', '.join(TLS_PROTOCOLS)))
    checked['protocols'] = sorted(set(protocols))
    checked['http2'] = bool_or_fail(tls.get('http2', False), where + '.http2')
    hsts = bool_or_fail(tls.get('hsts', False), where + '.hsts')
    max_age = int_or_fail(tls.get('hsts_max_age', HSTS_MAX_AGE), where + '.hsts_max_age', 0, 10 ** 9, 'seconds')
    checked['hsts_max_age'] = max_age if hsts else None
    return checked


class _Site(object):
    """What one listening port serves, checked."""

    def __init__(self, key, site, where, kind, settings):
        self.key = key
        site = dict_or_fail(site, where, 'upstream, root or directives')
        unknown = sorted(str(name) for name in site if name not in SITE_KEYS)
        if unknown:
            fail('%s: unknown key(s) %s; a site may have %s' % (where, ', '.join(unknown), ', '.join(SITE_KEYS)))
        self.upstream = [upstream_server_or_fail(server, '%s.upstream[%d]' % (where, index))
                         for index, server in enumerate(list_or_fail(site.get('upstream'), where + '.upstream'))]
        self.root = site.get('root')
        self.scheme = site.get('upstream_scheme')
        self.tls = None
        self.redirect_port = None
        if kind != HTTP:
            for name in ('root', 'upstream_scheme', 'tls', 'redirect_to_https', 'server_names', 'server_directives'):
                if site.get(name) is not None:
                    fail('%s: %s only works for HTTP listeners; %s ports can proxy to an upstream or take directives'
                         % (where, name, kind.upper()))
        if self.root is not None:
            self.root = path_or_fail(self.root, where + '.root')
            if self.upstream:
                fail('%s: give either upstream or root, not both' % where)
        if self.scheme is None:
            self.scheme = 'http'
        elif self.scheme not in UPSTREAM_SCHEMES:
            fail('%s.upstream_scheme: expected http or https, got %s' % (where, describe(self.scheme)))
        self.directives = _directives(site.get('directives'), where + '.directives', settings.timeouts)
        self.server_directives = _directives(site.get('server_directives'), where + '.server_directives',
                                             settings.timeouts)
        self.server_names = (None if site.get('server_names') is None
                             else _server_names(site['server_names'], where + '.server_names'))
        if site.get('tls') is not None:
            self.tls = _checked_tls(site['tls'], where + '.tls', settings.tls_protocols)
        redirect = site.get('redirect_to_https')
        if redirect is not None and redirect is not False:
            if self.tls is not None:
                fail('%s: redirect_to_https is for plain HTTP ports; this one has tls' % where)
            if self.upstream or self.root:
                fail('%s: redirect_to_https answers every request with a redirect; drop upstream and root' % where)
            self.redirect_port = 443 if redirect is True else port_or_fail(redirect, where + '.redirect_to_https')
        proxy_protocol = site.get('proxy_protocol')
        self.proxy_protocol = (settings.proxy_protocol if proxy_protocol is None
                               else bool_or_fail(proxy_protocol, where + '.proxy_protocol'))
        if self.proxy_protocol and kind == UDP:
            if proxy_protocol is not None:
                fail('%s: proxy_protocol works on TCP listeners only' % where)
            self.proxy_protocol = False

    def has_content(self):
        """Whether the site says what to serve; a site with only port settings (tls, names...) takes default_site's."""
        return bool(self.upstream or self.root or self.directives or self.redirect_port)


class _Settings(object):
    """Every option of nginx_listeners, checked once."""

    def __init__(self, options):
        self.floating_ip = bool_or_fail(options['floating_ip'], 'floating_ip')
        self.listen_all_addresses = bool_or_fail(options['listen_all_addresses'], 'listen_all_addresses')
        self.stream_ports = set(_port_list(options['stream_ports'], 'stream_ports'))
        self.ha_ports = {TCP: _port_list(options['ha_tcp_ports'], 'ha_tcp_ports'),
                         UDP: _port_list(options['ha_udp_ports'], 'ha_udp_ports')}
        self.server_names = _server_names(options['server_names'], 'server_names')
        self.health_path = health_path_or_fail(options['health_path'], 'health_path')
        self.health_port = None if options['health_port'] is None else port_or_fail(options['health_port'],
                                                                                    'health_port')
        self.drain = bool_or_fail(options['drain'], 'drain')
        self.timeouts = _Timeouts(options['lb_idle_timeout'], options['keepalive_timeout'], options['proxy_timeout'],
                                  options['tcp_keepalive'])
        self.proxy_protocol = bool_or_fail(options['proxy_protocol'], 'proxy_protocol')
        trusted = options['proxy_protocol_trusted']
        if trusted is None:
            trusted = DEFAULT_REAL_IP_FROM
        self.real_ip_from = [network_or_fail(network, 'proxy_protocol_trusted[%d]' % index)
                             for index, network in enumerate(list_or_fail(trusted, 'proxy_protocol_trusted'))]
        protocols = options['tls_protocols']
        self.tls_protocols = DEFAULT_TLS_PROTOCOLS if protocols is None else protocols
        self.tls_dir = path_or_fail(options['tls_dir'], 'tls_dir').rstrip('/') or '/'
        self.default_site = _Site(None, options['default_site'], 'default_site', HTTP, self)
        self.sites = self._sites(options['sites'])

    def kind(self, transport, port):
        return HTTP if transport == TCP and port not in self.stream_ports else transport

    def _sites(self, sites):
        """Every site, indexed by (transport, port); a plain port means TCP."""
        if sites is None:
            return {}
        if not isinstance(sites, dict):
            fail('sites: expected a dictionary keyed by port, got %s' % describe(sites))
        indexed = {}
        for key, site in sites.items():
            match = _SITE_KEY.match(str(key)) if isinstance(key, (str, int)) and not isinstance(key, bool) else None
            if not match:
                fail('sites: key %s is not a port, "PORT/tcp" or "PORT/udp"' % describe(key))
            port = port_or_fail(int(match.group(1)), 'sites key %s' % describe(key))
            transport = (match.group(2) or TCP).lower()
            if (transport, port) in indexed:
                fail('sites: port %d/%s is given twice' % (port, transport))
            indexed[(transport, port)] = _Site(key, site, 'sites[%s]' % describe(key), self.kind(transport, port),
                                               self)
        return indexed


# --------------------------------------------------------------------------- step 2: listeners


class _Server(object):
    """One nginx server block: every listen of one (kind, port), and the frontends that lead to it."""

    def __init__(self, kind, port):
        self.kind = kind
        self.port = port
        self.listens = {}
        self.frontend_ips = {}
        self.frontends = {}

    def add(self, address, frontend_ip, frontend_port):
        self.listens[address] = None
        self.frontend_ips.setdefault(frontend_ip, None)
        self.frontends.setdefault('%s:%s' % (bracketed(frontend_ip), frontend_port), None)

    def listen_arguments(self):
        suffix = ' udp' if self.kind == UDP else ''
        return ['%s:%d%s' % (address, self.port, suffix) for address in sorted(self.listens, key=address_sort_key)]


def _listen_address(address, settings):
    if settings.listen_all_addresses:
        return '[::]' if is_ipv6(address) else '*'
    return bracketed(address)


def _rule_text(rule):
    if rule['all_ports']:
        return 'HA ports rule (%s) %s:* -> %s:*' % (
            rule['protocol'], bracketed(rule['frontend_ip_address']), bracketed(rule['private_ip_address']))
    return 'inbound rule (%s) %s:%d -> %s:%d' % (
        rule['protocol'], bracketed(rule['frontend_ip_address']), rule['frontend_port'],
        bracketed(rule['private_ip_address']), rule['backend_port'])


def _host_ips(facts, private_ips):
    """This host's private IPs, canonical, each with the name of the setting it came from."""
    if private_ips:
        source, addresses = 'private_ips', list_or_fail(private_ips, 'private_ips')
    else:
        source, addresses = 'azure_loadbalancer.private_ips', facts['private_ips']
    host_ips = {}
    for index, address in enumerate(addresses):
        host_ips.setdefault(address_or_fail(address, '%s[%d]' % (source, index)), '%s[%d]' % (source, index))
    return host_ips


def _collect_listeners(facts, host_ips, settings, warnings):
    """Group the rules of this host into servers keyed by (kind, port); returns (servers, matched rule count)."""
    servers = {}
    matched = 0
    for index, rule in enumerate(facts['inbound_rules']):
        where = 'azure_loadbalancer.inbound_rules[%d]' % index
        for key in ('frontend_ip_address', 'private_ip_address'):
            plain_address_or_fail(rule[key], '%s.%s' % (where, key))
        if rule['private_ip_address'] not in host_ips:
            continue
        matched += 1
        bound = 'frontend_ip_address' if settings.floating_ip else 'private_ip_address'
        bindable_or_fail(rule[bound], '%s.%s' % (where, bound))
        transports = (TCP, UDP) if rule['protocol'] == 'all' else (rule['protocol'],)
        if rule['all_ports']:
            chosen = [(transport, port) for transport in transports for port in settings.ha_ports[transport]]
            if not chosen:
                warnings.append('%s covers every port; nginx cannot listen on all ports, so it is skipped. '
                                'List the ports to serve for it in ha_tcp_ports / ha_udp_ports.' % _rule_text(rule))
        else:
            port = rule['frontend_port'] if settings.floating_ip else rule['backend_port']
            chosen = [(transport, port) for transport in transports]
        for transport, port in chosen:
            kind = settings.kind(transport, port)
            server = servers.get((kind, port))
            if server is None:
                server = servers[(kind, port)] = _Server(kind, port)
            server.add(_listen_address(rule[bound], settings), rule['frontend_ip_address'],
                       port if rule['all_ports'] else rule['frontend_port'])
    return servers, matched


# --------------------------------------------------------------------------- step 3: what servers serve


def _listen_parameters(kind, site, settings, tls):
    parameters = []
    if tls is not None:
        parameters.append('ssl')
        if tls['http2']:
            parameters.append('http2')
    if site.proxy_protocol:
        parameters.append('proxy_protocol')
    if kind != UDP and settings.timeouts.tcp_keepalive:
        parameters.append('so_keepalive=' + settings.timeouts.tcp_keepalive)
    return ' '.join(parameters)


def _server_plans(servers, settings, warnings):
    """One planned server per listener; returns (http servers, stream servers, upstream blocks, used site keys)."""
    used_sites = set()
    upstreams = {HTTP: [], 'stream': []}
    http_servers, stream_servers = [], []
    empty_site = {}
    for (kind, port) in sorted(servers, key=lambda key: (key[1], key[0])):
        server = servers[(kind, port)]
        site_transport = UDP if kind == UDP else TCP
        site = settings.sites.get((site_transport, port))
        if site is not None:
            used_sites.add((site_transport, port))
        elif kind == HTTP:
            site = settings.default_site
        else:
            if kind not in empty_site:
                empty_site[kind] = _Site(None, None, 'sites', kind, settings)
            site = empty_site[kind]
        # Port settings (tls, names, PROXY protocol) come from the port's own
        # site; what it serves from default_site when the site does not say.
        content = site if kind != HTTP or site.has_content() else settings.default_site
        planned = {
            'port': port,
            'listens': server.listen_arguments(),
            'listen_parameters': _listen_parameters(kind, site, settings, site.tls),
            'frontends': list(server.frontends),
            'upstream': None,
            'directives': content.directives,
            'proxy_protocol': site.proxy_protocol,
        }
        if kind == HTTP:
            names = site.server_names if site.server_names is not None else settings.server_names
            planned.update({
                'root': content.root,
                'upstream_scheme': content.scheme,
                'server_names': [bracketed(address) for address in server.frontend_ips] + names,
                'server_directives': site.server_directives,
                'redirect_port': content.redirect_port,
                'tls': _tls_plan(site, settings),
                'serves': ('redirect' if content.redirect_port else 'upstream' if content.upstream
                           else 'root' if content.root else None),
            })
            if content.upstream:
                planned['upstream'] = UPSTREAM_NAME % (HTTP, port)
                upstreams[HTTP].append({'name': planned['upstream'], 'servers': content.upstream})
            http_servers.append(planned)
            continue
        planned['protocol'] = kind
        if not site.has_content():
            warnings.append('%s port %d (frontends %s) has nothing to serve: give sites["%d/%s"] an upstream '
                            'or directives. It is skipped.' % (kind.upper(), port, ', '.join(planned['frontends']),
                                                               port, kind))
            continue
        if site.upstream:
            planned['upstream'] = UPSTREAM_NAME % (kind, port)
            upstreams['stream'].append({'name': planned['upstream'], 'servers': site.upstream})
        stream_servers.append(planned)
    return http_servers, stream_servers, upstreams, used_sites


# --------------------------------------------------------------------------- step 5: TLS files


def _site_label(site):
    return 'default' if site.key is None else re.sub(r'[^0-9a-z]+', '-', str(site.key).lower()).strip('-')


def _digest(*texts):
    return hashlib.sha256('\n'.join(texts).encode('utf-8')).hexdigest()[:16]


def _tls_plan(site, settings):
    """Paths nginx reads for this site's TLS; content goes to files named after its digest, so no file in use changes."""
    tls = site.tls
    if tls is None:
        return None
    label = _site_label(site)
    paths, content = tls['paths'], tls['content']
    if 'certificate' in content:
        certificate = '%s/%s-%s.crt' % (settings.tls_dir, label,
                                        _digest(content['certificate'], content.get('chain', '')))
    elif 'chain' in paths:
        certificate = '%s/%s-%s.fullchain.crt' % (settings.tls_dir, label,
                                                  _digest(paths['certificate'], paths['chain']))
    else:
        certificate = paths['certificate']
    key = paths['key'] if 'key' in paths else '%s/%s-%s.key' % (settings.tls_dir, label, _digest(content['key']))
    return {'certificate': certificate, 'key': key, 'protocols': ' '.join(tls['protocols']), 'http2': tls['http2'],
            'hsts_max_age': tls['hsts_max_age']}


def _tls_files(settings, http_servers):
    """What the role installs or checks for TLS, without any content (the key must never reach the output).

    ``installs``: files the role writes, each with the site key whose ``tls`` holds the content (``site_key``,
    null for default_site) and the ``parts`` joined to make it (``*_content`` keys), or the ``paths`` on the host to
    join. ``checks``: files on the host that must be readable, with the setting that names them.
    """
    sites = {}
    for server in http_servers:
        if server['tls'] is not None:
            site = settings.sites.get((TCP, server['port']), settings.default_site)
            sites.setdefault(server['tls']['certificate'] + server['tls']['key'], (site, server['tls']))
    installs, checks = {}, {}
    for site, plan in sites.values():
        where = 'default_site.tls' if site.key is None else 'sites[%s].tls' % describe(site.key)
        paths, content = site.tls['paths'], site.tls['content']
        for part, path in sorted(paths.items()):
            checks.setdefault(path, {'path': path, 'setting': '%s.%s' % (where, part)})
        if 'certificate' in content:
            parts = ['certificate_content'] + (['chain_content'] if 'chain' in content else [])
            installs.setdefault(plan['certificate'], {'dest': plan['certificate'], 'mode': '0644',
                                                      'site_key': site.key, 'parts': parts, 'paths': []})
        elif 'chain' in paths:
            installs.setdefault(plan['certificate'], {'dest': plan['certificate'], 'mode': '0644',
                                                      'site_key': site.key, 'parts': [],
                                                      'paths': [paths['certificate'], paths['chain']]})
        if 'key' in content:
            installs.setdefault(plan['key'], {'dest': plan['key'], 'mode': '0600', 'site_key': site.key,
                                              'parts': ['key_content'], 'paths': []})
    return {'installs': [installs[dest] for dest in sorted(installs)],
            'checks': [checks[path] for path in sorted(checks)]}


# --------------------------------------------------------------------------- step 4: health


def _health_plan(settings, host_ips, servers, http_servers, warnings):
    health = {'path': settings.health_path, 'port': settings.health_port, 'listens': [], 'drain': settings.drain,
              'listen_parameters': '', 'proxy_protocol': settings.proxy_protocol}
    if settings.health_port is None:
        return health
    if (TCP, settings.health_port) in servers:
        fail('health_port %d is also a TCP stream port; the health endpoint needs HTTP' % settings.health_port)
    addresses = set(_listen_address(bindable_or_fail(address, where), settings) for address, where in host_ips.items())
    listens = ['%s:%d' % (address, settings.health_port) for address in sorted(addresses, key=address_sort_key)]
    shared = [server for server in http_servers if server['port'] == settings.health_port]
    if shared:
        # The probe port is also a site port: answer on the site's server,
        # with the host's other private addresses added to it.
        merged = set(shared[0]['listens']) | set(listens)
        shared[0]['listens'] = sorted(merged, key=lambda listen: address_sort_key(listen.rpartition(':')[0]))
    elif listens:
        health['listens'] = listens
        parameters = ['proxy_protocol'] if settings.proxy_protocol else []
        if settings.timeouts.tcp_keepalive:
            parameters.append('so_keepalive=' + settings.timeouts.tcp_keepalive)
        health['listen_parameters'] = ' '.join(parameters)
    else:
        warnings.append('health_port %d: this host has no private IP in the facts to listen on.' % settings.health_port)
    return health


# --------------------------------------------------------------------------- the plan


def _facts_summary(facts, host_ips, private_ips, matched):
    owners = {}
    for rule in facts['inbound_rules']:
        owners.setdefault(rule['private_ip_address'], None)
    held = ('the facts hold %d inbound rule(s)' % len(facts['inbound_rules'])
            + (', for private IP(s) %s' % ', '.join(sorted(owners, key=address_sort_key)) if owners else ''))
    source = 'nginx_frontends_private_ips' if private_ips else 'the private IPs in the facts'
    served = ', '.join(host_ips) if host_ips else 'none'
    return '%s; %d of them lead to %s (%s)' % (held, matched, served, source)


def _empty_plan(facts):
    return {
        'available': False,
        'reason': facts.get('reason') or 'unknown',
        'message': facts.get('message') or 'No load balancer metadata is available for this host.',
        'host_private_ips': [],
        'http_servers': [],
        'stream_servers': [],
        'upstreams': {HTTP: [], 'stream': []},
        'health': {'path': None, 'port': None, 'listens': [], 'drain': False, 'listen_parameters': ''},
        'loopback_addresses': [],
        'tls_files': {'installs': [], 'checks': []},
        'lb_listeners': 0,
        'health_served': False,
        'warnings': [],
    }


def plan_listeners(facts, **options):
    """Plan nginx listeners for the inbound rules that reach this host; see nginx_listeners.yml."""
    try:
        facts = validate_facts(facts)
    except LoadBalancerDataError as exc:
        fail('azure_loadbalancer facts cannot be used: %s' % exc)
    if not facts['available']:
        return _empty_plan(facts)

    settings = _Settings(options)
    host_ips = _host_ips(facts, options['private_ips'])
    warnings = []
    servers, matched = _collect_listeners(facts, host_ips, settings, warnings)
    if not matched:
        warnings.append('No inbound rule sends traffic to %s; nginx gets no load-balanced listener.'
                        % (', '.join(host_ips) if host_ips else 'this host (the facts list no private IP)'))
    http_servers, stream_servers, upstreams, used_sites = _server_plans(servers, settings, warnings)
    for (transport, port), site in sorted(settings.sites.items(), key=lambda item: (item[0][1], item[0][0])):
        if (transport, port) not in used_sites:
            warnings.append('sites[%s] matches no listener of this host; it is not used.' % describe(site.key))
    health = _health_plan(settings, host_ips, servers, http_servers, warnings)

    loopback = {}
    if settings.floating_ip:
        for server in http_servers + stream_servers:
            for address in servers[(server.get('protocol', HTTP), server['port'])].frontend_ips:
                loopback.setdefault(address, None)
    return {
        'available': True,
        'host_private_ips': list(host_ips),
        'floating_ip': settings.floating_ip,
        'http_servers': http_servers,
        'stream_servers': stream_servers,
        'upstreams': upstreams,
        'health': health,
        'timeouts': settings.timeouts.as_plan(),
        'real_ip_from': settings.real_ip_from,
        'loopback_addresses': sorted(loopback, key=address_sort_key),
        'tls_files': _tls_files(settings, http_servers),
        'lb_listeners': len(http_servers) + len(stream_servers),
        'health_served': bool(http_servers or health['listens']),
        'facts_summary': _facts_summary(facts, host_ips, options['private_ips'], matched),
        'warnings': warnings,
    }
