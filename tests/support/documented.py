# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection returns for the "documented" scenario (the sample of Azure's documentation)."""


def documented_facts():
    """The facts docs/guide.md promises for the sample of Azure's documentation."""
    v4 = {"frontend_ip_address": "50.0.0.1", "protocol": "tcp", "frontend_port": 80, "backend_port": 443,
          "private_ip_address": "10.1.0.4", "all_ports": False}
    v6 = {"frontend_ip_address": "2603:10e1:100:2::1:1", "protocol": "tcp", "frontend_port": 80, "backend_port": 443,
          "private_ip_address": "ace:cab:deca:deed::1", "all_ports": False}
    return {
        "available": True,
        "api_version": "2020-10-01",
        "public_ip_addresses": [{"frontend_ip_address": "51.0.0.1", "private_ip_address": "10.1.0.4"}],
        "inbound_rules": [v4, v6],
        "outbound_rules": [{"frontend_ip_address": "50.0.0.1", "private_ip_address": "10.1.0.4"},
                           {"frontend_ip_address": "2603:10e1:100:2::1:1", "private_ip_address": "ace:cab:deca:deed::1"}],
        "tunnel_interfaces": [],
        "frontend_ips": ["50.0.0.1", "51.0.0.1", "2603:10e1:100:2::1:1"],
        "private_ips": ["10.1.0.4", "ace:cab:deca:deed::1"],
        "backend_ports": [443],
        "inbound_rules_by_private_ip": {"10.1.0.4": [v4], "ace:cab:deca:deed::1": [v6]},
        "inbound_rules_by_backend_port": {"443": [v4, v6]},
    }
