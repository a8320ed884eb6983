# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Inventory groups from cached facts: examples/fleet/inventory/
# 02-loadbalancer-groups.yml (ansible.builtin.constructed) on top of a static
# inventory builds one group per frontend IP and per backend port from the
# facts gather.yml cached, ansible-inventory lists them, and
# examples/fleet/frontend.yml targets one of them.

import json
import subprocess
import pytest
import yaml
from imds_emulator import load_fleet

from support.fleet import (
    EXAMPLES,
    Fleet,
    JsonfileCache,
    RedisCache,
    RedisServer,
    WEB_FRONTENDS,
    copy_examples,
    expected_summary,
    fleet_scenarios,
    loadbalancer_document,
    safe_group_suffix,
    tool,
)
from support.ansible_env import ansible_environment

LB_HOSTS = 9
NO_LB_HOST = "vm10"       # answers 404: no Standard load balancer
NEVER_GATHERED = "vm11"   # left out of the gather run
CHECK_HOSTS_TASK = "Fail when the host pattern matches no host of the inventory"  # check_hosts.yml


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(params=["jsonfile", "redis"])
def fleet(request, run_playbook, emulator_fleet, tmp_path):
    workspace = copy_examples(tmp_path / "fleet")
    if request.param == "redis":
        cache = RedisCache(request.getfixturevalue("redis_server"))
    else:
        cache = JsonfileCache(workspace / ".facts")
    scenarios = fleet_scenarios(LB_HOSTS)
    scenarios[NO_LB_HOST] = "no-loadbalancer"
    scenarios[NEVER_GATHERED] = fleet_scenarios(LB_HOSTS + 2)[NEVER_GATHERED]
    return Fleet(run_playbook, emulator_fleet, workspace, cache, scenarios)


def expected_groups():
    """Group name -> hosts, worked out from the scenarios of the LB hosts."""
    groups = {"lb_available": set(), "lb_unavailable": {NO_LB_HOST}, "lb_facts_missing": {NEVER_GATHERED}}
    for index in range(1, LB_HOSTS + 1):
        name = "vm%02d" % index
        summary = expected_summary(loadbalancer_document(index))
        groups["lb_available"].add(name)
        for address in summary["frontend_ips"]:
            groups.setdefault("lb_frontend_" + safe_group_suffix(address), set()).add(name)
        for port in summary["backend_ports"]:
            groups.setdefault("lb_backend_port_%d" % port, set()).add(name)
    return groups


def hosts_of(listing, group):
    """Every host of group in `ansible-inventory --list` output, children included."""
    entry = listing.get(group, {})
    found = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        found |= hosts_of(listing, child)
    return found


def test_constructed_groups_come_from_cached_facts(fleet, collection_install, tmp_path):
    gathered = fleet.run("gather.yml", extra_args=["--limit", "!" + NEVER_GATHERED])
    gathered.assert_ok()
    assert fleet.cache.facts(NEVER_GATHERED) is None
    assert fleet.cached_facts(NO_LB_HOST)["available"] is False

    static_inventory = tmp_path / "hosts.yml"
    static_inventory.write_text(yaml.safe_dump(fleet.inventory), encoding="utf-8")
    constructed = fleet.workspace / "inventory" / "02-loadbalancer-groups.yml"

    environment = ansible_environment(tmp_path, collection_install.path, fleet.environment)
    listed = subprocess.run(
        [tool("ansible-inventory"), "-i", str(static_inventory), "-i", str(constructed), "--list"],
        env=environment, cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False)
    assert listed.returncode == 0, listed.stderr
    listing = json.loads(listed.stdout)

    wanted = expected_groups()
    built = {group for group in listing if group.startswith("lb_")}
    assert built == set(wanted), "groups built: %s" % sorted(built)
    for group, members in wanted.items():
        assert hosts_of(listing, group) == members, group

    # A play that targets one of those groups runs on exactly its hosts.
    frontend = WEB_FRONTENDS[1]
    target = "lb_frontend_" + safe_group_suffix(frontend)
    ran = fleet.run("frontend.yml", inventory=str(static_inventory), extra_vars={"frontend_ip": frontend},
                    extra_args=["-i", str(constructed)])
    ran.assert_ok()
    shown = {entry.host: entry.result["msg"] for entry in ran.results
             if entry.task == "Show the backend ports that the frontend IP sends to this host"}
    assert set(shown) == wanted[target]
    for name, message in shown.items():
        index = int(name[2:])
        rules = loadbalancer_document(index)["loadbalancer"]["inboundRules"]
        assert message == {"frontend_ip": frontend,
                           "backend_ports": sorted({rule["backendPort"] for rule in rules
                                                    if rule["frontendIpAddress"] == frontend})}

    # A frontend IP that no host has (a typo) fails the run before any host is touched,
    # naming the group it looked for and the frontend groups there are.
    typo = fleet.run("frontend.yml", inventory=str(static_inventory), extra_vars={"frontend_ip": "198.51.100.7"},
                     extra_args=["-i", str(constructed)])
    assert typo.rc == 2, typo.describe()
    refused = typo.task(CHECK_HOSTS_TASK)
    assert refused["failed"] is True
    assert "lb_frontend_198_51_100_7" in refused["msg"] and target in refused["msg"], refused["msg"]
    assert typo.task_names() == [CHECK_HOSTS_TASK]


@pytest.mark.parametrize("playbook", ["gather.yml", "report.yml", "frontend.yml"])
def test_example_playbooks_fail_clearly_without_hosts(playbook, run_playbook, tmp_path):
    # An inventory that was not loaded (a wrong path, no ANSIBLE_INVENTORY) leaves no hosts:
    # Ansible alone warns and exits 0; the examples fail and say so.
    workspace = copy_examples(tmp_path / "fleet")
    empty = tmp_path / "empty.yml"
    empty.write_text("all:\n  hosts: {}\n", encoding="utf-8")
    result = run_playbook(workspace / playbook, inventory=empty, extra_vars={"frontend_ip": "50.0.0.1"},
                          env={"ANSIBLE_CONFIG": str(workspace / "ansible.cfg")})
    assert result.rc == 2, result.describe()
    refused = result.task(CHECK_HOSTS_TASK)
    assert refused["failed"] is True and "No host of the inventory matches" in refused["msg"], refused["msg"]
    assert str(empty) in refused["msg"], "the message names the inventory in use"
    assert result.task_names() == [CHECK_HOSTS_TASK]


def test_emulated_example_inventory_matches_its_fleet_file():
    # examples/fleet/emulated: one emulated VM per host, each inventory host pointing at its own port.
    specs = load_fleet(EXAMPLES / "emulated" / "fleet.json")
    inventory = yaml.safe_load((EXAMPLES / "emulated" / "hosts.yml").read_text(encoding="utf-8"))
    endpoints = {name: host["imds_endpoint"] for name, host in inventory["all"]["hosts"].items()}
    assert endpoints == {spec.name: "http://127.0.0.1:%d" % spec.port for spec in specs}
    assert len({spec.port for spec in specs}) == len(specs) and all(spec.port > 0 for spec in specs)
    assert inventory["all"]["vars"]["ansible_connection"] == "local"
    # Both kinds of host are there: with and without a Standard load balancer.
    assert {"loadbalancer" in spec.scenario and not spec.scenario.get("loadbalancer_error") for spec in specs} == {True, False}
