# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The bundled scenarios, and loading scenarios from names and files.

import json

import pytest
import imds_emulator
from support.emulator_http import compact_json, fetch, fetch_lb, make_scenario
from support.paths import TOOLS_DIR

REQUIRED = {"documented", "no-loadbalancer", "basic-sku", "empty", "real-world", "no-outer-key", "ipv6-dual-stack", "many-rules",
            "transient-then-ok", "throttled", "enabling", "hostile", "scale-set", "gateway"}
BUNDLED = imds_emulator.bundled_scenarios()

# The sample response of Microsoft's "Retrieve load balancer metadata using IMDS" page.
DOCS_SAMPLE = {"loadbalancer": {
    "publicIpAddresses": [{"frontendIpAddress": "51.0.0.1", "privateIpAddress": "10.1.0.4"}],
    "inboundRules": [
        {"frontendIpAddress": "50.0.0.1", "protocol": "tcp", "frontendPort": 80, "backendPort": 443, "privateIpAddress": "10.1.0.4"},
        {"frontendIpAddress": "2603:10e1:100:2::1:1", "protocol": "tcp", "frontendPort": 80, "backendPort": 443, "privateIpAddress": "ace:cab:deca:deed::1"},
    ],
    "outboundRules": [
        {"frontendIpAddress": "50.0.0.1", "privateIpAddress": "10.1.0.4"},
        {"frontendIpAddress": "2603:10e1:100:2::1:1", "privateIpAddress": "ace:cab:deca:deed::1"},
    ],
}}


def unthrottled(name):
    """A bundled scenario with the rate limit off, so a test can walk through all its faults quickly."""
    scenario = imds_emulator.load_scenario(name)
    scenario["rate_limit"] = None
    return scenario


def lb_document(name):
    return imds_emulator.load_scenario(name)["loadbalancer"]


def test_all_required_scenarios_are_bundled():
    assert REQUIRED <= set(BUNDLED)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenario_is_valid_and_described(name):
    raw = json.loads((TOOLS_DIR / "scenarios" / (name + ".json")).read_text(encoding="utf-8"))
    scenario = imds_emulator.validate_scenario(raw, source=name)
    assert len(scenario["description"]) > 20
    assert "\n" not in scenario["description"]
    assert isinstance(raw.get("instance"), dict), "bundled scenarios describe their VM"


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenario_settles_on_its_load_balancer_answer(start_emulator, name):
    scenario = unthrottled(name)
    emulator = start_emulator(scenario)
    # Walk past the scenario's faults; the answer after them is the steady state.
    for _ignored in range(sum(fault.get("count", 1) for fault in scenario["faults"])):
        fetch_lb(emulator)
    reply = fetch_lb(emulator)
    if "loadbalancer" in scenario and not scenario.get("loadbalancer_error"):
        assert (reply.status, reply.body) == (200, compact_json(scenario["loadbalancer"]))
    else:
        assert reply.status == 404
        assert reply.json()["error"] == imds_emulator.LOADBALANCER_ERRORS[scenario.get("loadbalancer_error", "no_metadata")]


def test_documented_is_the_docs_sample_on_a_vm_without_public_ip(start_emulator):
    emulator = start_emulator("documented")
    assert fetch_lb(emulator).json() == DOCS_SAMPLE
    reply = fetch(emulator, "/metadata/instance/network/interface/0/ipv4/ipAddress/0/publicIpAddress?api-version=2021-02-01&format=text")
    assert (reply.status, reply.body) == (200, b"")
    assert fetch(emulator, "/metadata/instance/network/interface/0/ipv4/ipAddress/0/privateIpAddress?api-version=2021-02-01&format=text").text == "10.1.0.4"


@pytest.mark.parametrize("name", ["no-loadbalancer", "basic-sku"])
def test_vms_without_standard_load_balancer_get_no_metadata(start_emulator, name):
    reply = fetch_lb(start_emulator(name))
    assert reply.status == 404
    assert reply.json() == {"error": imds_emulator.LOADBALANCER_ERRORS["no_metadata"]}


def test_empty_has_three_empty_lists():
    assert lb_document("empty") == {"loadbalancer": {"publicIpAddresses": [], "inboundRules": [], "outboundRules": []}}


def test_real_world_carries_the_variations_clients_must_survive():
    document = lb_document("real-world")["loadbalancer"]
    rules = document["inboundRules"]
    assert "outboundRules" not in document
    assert document["publicIpAddresses"] is None
    assert {rule["protocol"] for rule in rules} >= {"Tcp", "UDP", "All"}
    assert any(isinstance(rule["frontendPort"], str) for rule in rules)
    assert any(rule["protocol"] == "All" and rule["frontendPort"] == 0 and rule["backendPort"] == 0 for rule in rules)
    addresses = [rule["frontendIpAddress"] for rule in rules] + [rule["privateIpAddress"] for rule in rules]
    assert any(":" in address and address != address.lower() for address in addresses)  # upper-case IPv6
    assert any(address.count(":") == 7 for address in addresses)  # fully expanded IPv6
    assert set(document) - {"publicIpAddresses", "inboundRules", "outboundRules"}  # an extra key
    assert any(set(rule) - {"frontendIpAddress", "protocol", "frontendPort", "backendPort", "privateIpAddress"} for rule in rules)


def test_no_outer_key_has_the_lists_at_the_top():
    document = lb_document("no-outer-key")
    assert "loadbalancer" not in document
    assert document["inboundRules"]


def test_dual_stack_has_ipv4_and_ipv6_frontends():
    rules = lb_document("ipv6-dual-stack")["loadbalancer"]["inboundRules"]
    assert {":" in rule["frontendIpAddress"] for rule in rules} == {True, False}


def test_many_rules_has_a_hundred_inbound_rules():
    assert len(lb_document("many-rules")["loadbalancer"]["inboundRules"]) == 100


def test_hostile_tries_to_inject_nginx_directives():
    text = json.dumps(lb_document("hostile"))
    assert "1.2.3.4; include /etc/passwd" in text
    assert "80 default_server" in text
    assert "\\n}" in text  # a value that would close an nginx block


def test_scale_set_instance_names_its_scale_set(start_emulator):
    emulator = start_emulator("scale-set")
    reply = fetch(emulator, "/metadata/instance/compute/vmScaleSetName?api-version=2021-02-01&format=text")
    assert (reply.status, reply.text) == (200, "vmss-web")
    assert fetch_lb(emulator).status == 200


def test_transient_then_ok_sequence(start_emulator):
    emulator = start_emulator(unthrottled("transient-then-ok"))
    replies = [fetch_lb(emulator) for _ignored in range(3)]
    assert [reply.status for reply in replies] == [503, 503, 200]
    assert replies[0].json() == {"error": "Internal service unavailable. Retry later"}
    assert replies[2].json() == DOCS_SAMPLE


def test_enabling_sequence(start_emulator):
    emulator = start_emulator(unthrottled("enabling"))
    replies = [fetch_lb(emulator) for _ignored in range(4)]
    assert [reply.status for reply in replies] == [404, 404, 404, 200]
    assert replies[0].json() == {"error": "/metadata/loadbalancer isn't currently available"}


def test_throttled_sequence(start_emulator):
    emulator = start_emulator(unthrottled("throttled"))
    assert [fetch_lb(emulator).status for _ignored in range(7)] == [429, 429, 429, 200, 429, 429, 200]


# -- loading

def test_load_scenario_by_path(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(make_scenario(description="mine")), encoding="utf-8")
    assert imds_emulator.load_scenario(str(path))["description"] == "mine"


@pytest.mark.parametrize("content, complaint", [
    ("{not json", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"loadbalancer": {}, "extra": 1}', "'extra'"),
    ('{"api_versions": ["2020-10-01", "2020-10-01"]}', "duplicates"),
    ('{"api_versions": ["20201001"]}', "api_versions"),
    ('{"instance": []}', "'instance'"),
    ('{"description": 7}', "'description'"),
    ('{"rate_limit": {"requests": 0, "seconds": 1}}', "rate_limit"),
    ('{"rate_limit": 5}', "rate_limit"),
    ('{"faults": {}}', "'faults'"),
])
def test_invalid_scenario_files_name_the_problem(tmp_path, content, complaint):
    path = tmp_path / "broken.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(imds_emulator.ScenarioError) as caught:
        imds_emulator.load_scenario(str(path))
    assert complaint in str(caught.value)
    assert str(path) in str(caught.value)


def test_unknown_bundled_name_lists_the_choices():
    with pytest.raises(imds_emulator.ScenarioError) as caught:
        imds_emulator.load_scenario("documentd")
    assert "documented" in str(caught.value)


def test_missing_scenario_file_is_reported():
    with pytest.raises(imds_emulator.ScenarioError, match="not found"):
        imds_emulator.load_scenario("/nonexistent/scenario.json")


def test_gateway_serves_vxlan_tunnel_interfaces(start_emulator):
    document = fetch_lb(start_emulator("gateway")).json()["loadbalancer"]
    tunnels = document["tunnelInterfaces"]
    assert {tunnel["type"] for tunnel in tunnels} == {"Internal", "External"}
    assert {tunnel["protocol"] for tunnel in tunnels} == {"VXLAN"}
    assert all(isinstance(tunnel[key], int) for tunnel in tunnels for key in ("gatewayPort", "identifier", "localPort"))
    assert [(rule["protocol"], rule["frontendPort"], rule["backendPort"]) for rule in document["inboundRules"]] == [
        ("All", 0, 0)]
