# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Filters that turn azure_loadbalancer facts into nginx listeners, safely.

The documentation of each filter is in the YAML file named after it, next to
this file (nginx_listeners.yml, nginx_argument.yml, nginx_missing_addresses.yml).

Everything that ends up in an nginx configuration passes through here first:
facts are re-validated with the collection's normalisers, then every address,
port, name, path and directive is checked against a strict pattern, so a value
can never close a directive or a block and add its own. The planner lives in
plugin_utils/_nginx_plan.py, the syntax checks in plugin_utils/_nginx_syntax.py.
The filters only compute data; the nginx_frontends role's template prints it.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.imds.azure.plugins.plugin_utils._nginx_plan import plan_listeners
from ansible_collections.imds.azure.plugins.plugin_utils._nginx_syntax import (
    missing_addresses,
    nginx_argument,
)


def nginx_listeners(facts, private_ips=None, floating_ip=False, listen_all_addresses=False, stream_ports=None,
                    ha_tcp_ports=None, ha_udp_ports=None, server_names=None, sites=None, default_site=None,
                    health_path='/healthz', health_port=None, drain=False, lb_idle_timeout=4, keepalive_timeout=75,
                    proxy_timeout=60, tcp_keepalive=True, proxy_protocol=False, proxy_protocol_trusted=None,
                    tls_protocols=None, tls_dir='/etc/nginx/tls'):
    """Plan nginx listeners for the inbound rules that reach this host; see nginx_listeners.yml."""
    return plan_listeners(
        facts, private_ips=private_ips, floating_ip=floating_ip, listen_all_addresses=listen_all_addresses,
        stream_ports=stream_ports, ha_tcp_ports=ha_tcp_ports, ha_udp_ports=ha_udp_ports, server_names=server_names,
        sites=sites, default_site=default_site, health_path=health_path, health_port=health_port, drain=drain,
        lb_idle_timeout=lb_idle_timeout, keepalive_timeout=keepalive_timeout, proxy_timeout=proxy_timeout,
        tcp_keepalive=tcp_keepalive, proxy_protocol=proxy_protocol, proxy_protocol_trusted=proxy_protocol_trusted, tls_protocols=tls_protocols,
        tls_dir=tls_dir)


def nginx_missing_addresses(ip_output, addresses):
    """The addresses that the output of ip -o addr show does not list; see nginx_missing_addresses.yml."""
    return missing_addresses(ip_output, addresses)


class FilterModule(object):

    def filters(self):
        return {
            'nginx_listeners': nginx_listeners,
            'nginx_argument': nginx_argument,
            'nginx_missing_addresses': nginx_missing_addresses,
        }
