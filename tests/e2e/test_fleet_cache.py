# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Fact caching for fleets, with the playbooks and ansible.cfg of
# examples/fleet: one run gathers the load balancer facts of many emulated
# VMs into a real cache (jsonfile files, or a real redis-server), later runs
# use them without asking IMDS, a failed gather leaves the cache as it was,
# and stale facts are refreshed the documented ways.

import pytest

from support.fleet import (
    Fleet,
    JsonfileCache,
    RedisCache,
    RedisServer,
    copy_examples,
    expected_summary,
    facts_summary,
    fleet_scenarios,
    host_scenario,
    http_backend_port,
    loadbalancer_document,
    unavailable_fault,
)

# A play that gathers facts the way examples/fleet/ansible.cfg and
# group_vars/all.yml say (gathering = smart; facts_modules = smart,
# imds.azure.loadbalancer_facts; one module after the other) and shows the
# port-80 backend port of each host. The minimal subset of setup's facts
# keeps many hosts on one busy machine well within gather_timeout.
SMART_GATHER_PLAY = """
- name: Use the load balancer facts gathered with the other facts
  hosts: all
  gather_subset: [min]
  gather_timeout: 60
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{ imds_endpoint }}"
      retry_timeout: 2
  tasks:
    - name: Show the backend port of the port 80 rule
      ansible.builtin.debug:
        msg: "{{ (ansible_facts.azure_loadbalancer.inbound_rules | selectattr('frontend_port', 'equalto', 80) | first).backend_port }}"
"""


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def workspace(tmp_path):
    return copy_examples(tmp_path / "fleet")


@pytest.fixture(params=["jsonfile", "redis"])
def cache(request, workspace):
    if request.param == "redis":
        return RedisCache(request.getfixturevalue("redis_server"))
    return JsonfileCache(workspace / ".facts")


def listener_lines(document):
    """The report lines examples/fleet/templates/listeners.txt.j2 must print for an IMDS document."""
    rules = document["loadbalancer"]["inboundRules"]
    return sorted("%s %s:%d -> %s:%d" % (rule["protocol"], rule["frontendIpAddress"], rule["frontendPort"],
                                         rule["privateIpAddress"], rule["backendPort"]) for rule in rules)


def smart_gather_ports(result, names):
    return {name: int(result.task("Show the backend port of the port 80 rule", host=name)["msg"]) for name in names}


def test_second_run_uses_cached_facts_without_asking_imds(run_playbook, emulator_fleet, workspace, cache):
    fleet = Fleet(run_playbook, emulator_fleet, workspace, cache, fleet_scenarios(10))

    gathered = fleet.run("gather.yml")
    gathered.assert_ok()
    for index, name in enumerate(fleet.names, start=1):
        assert gathered.stats[name]["failures"] == 0 and gathered.stats[name]["ok"] == 1, gathered.describe()
        # Read the cache itself: a cache that silently fell back to memory has nothing here.
        assert facts_summary(fleet.cached_facts(name)) == expected_summary(loadbalancer_document(index))
    requests_after_gather = fleet.request_counts()
    assert all(count == 1 for count in requests_after_gather.values()), requests_after_gather

    reported = fleet.run("report.yml")
    reported.assert_ok()
    assert fleet.request_counts() == requests_after_gather, "the report run asked IMDS instead of using the cache"
    for index, name in enumerate(fleet.names, start=1):
        assert sorted(fleet.report_lines(name)) == listener_lines(loadbalancer_document(index)), name

    csv_rows = (workspace / "reports" / "fleet.csv").read_text(encoding="utf-8").splitlines()
    assert csv_rows[0] == "host,protocol,frontend_ip,frontend_port,private_ip,backend_port"
    expected_rows = sorted(
        "%s,%s,%s,%d,%s,%d" % (name, rule["protocol"], rule["frontendIpAddress"], rule["frontendPort"],
                               rule["privateIpAddress"], rule["backendPort"])
        for index, name in enumerate(fleet.names, start=1)
        for rule in loadbalancer_document(index)["loadbalancer"]["inboundRules"])
    assert sorted(csv_rows[1:]) == expected_rows


def test_report_fails_loudly_without_a_persistent_cache(run_playbook, emulator_fleet, workspace):
    # Same fleet and gather, but the facts only live in memory: the report
    # run must stop with a message for every host, not write empty reports.
    fleet = Fleet(run_playbook, emulator_fleet, workspace, JsonfileCache(workspace / ".facts"), fleet_scenarios(2))
    in_memory = {"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory"}
    fleet.run("gather.yml", env=in_memory).assert_ok()
    assert not (workspace / ".facts").exists()

    reported = fleet.run("report.yml", env=in_memory)
    assert reported.rc != 0
    for name in fleet.names:
        failure = reported.task("Fail when the fact cache holds no load balancer facts for this host", host=name)
        assert failure["failed"] and "No cached load balancer facts for %s" % name in failure["msg"]
    assert not (workspace / "reports").exists()


def test_failed_gather_leaves_the_cached_facts_untouched(run_playbook, emulator_fleet, workspace, cache):
    fleet = Fleet(run_playbook, emulator_fleet, workspace, cache, fleet_scenarios(3))
    fleet.run("gather.yml").assert_ok()
    before = {name: cache.raw(name) for name in fleet.names}
    assert all(before.values()), before

    # vm02's load balancer changes, but its IMDS answers 503 for longer than
    # the retry budget: neither the new port nor anything else may reach the cache.
    broken = "vm02"
    fleet.emulators[broken].set_scenario(host_scenario(2, http_port=9090, faults=[unavailable_fault(60)]))

    # 1. The explicit task of gather.yml: the host is rescued and keeps its facts.
    refreshed = fleet.run("gather.yml", extra_vars={"imds_retry_timeout": 2})
    refreshed.assert_ok()
    assert refreshed.stats[broken]["rescued"] == 1, refreshed.describe()
    failed = refreshed.task("Read the load balancer facts from IMDS", host=broken)
    assert failed["failed"] and failed["status"] == 503 and "ansible_facts" not in failed
    kept = refreshed.task("Keep the cached facts, or fail when there are none", host=broken)
    assert not kept.get("failed") and "stay in use" in kept["msg"]
    assert all(refreshed.stats[name]["rescued"] == 0 for name in fleet.names if name != broken)
    assert cache.raw(broken) == before[broken]
    statuses = {entry["status"] for entry in fleet.loadbalancer_requests(broken)}
    assert statuses == {503}, statuses

    # 2. gather_facts with the module in facts_modules: the gather fails as a
    # whole for that host (setup's facts are dropped too) and nothing is written.
    smart = fleet.run(SMART_GATHER_PLAY)
    assert smart.rc != 0
    gathering = smart.task("Gathering Facts", host=broken)
    assert gathering["failed"] and "imds.azure.loadbalancer_facts" in gathering["msg"]
    assert cache.raw(broken) == before[broken]
    for name in fleet.names:
        if name != broken:
            # The other hosts did gather: their entries now hold setup's facts as well.
            assert "ansible_hostname" in cache.facts(name), smart.describe() + "\n" + smart.stdout[-3000:]

    # 3. What the next run sees for the broken host is the old data.
    fleet.run("report.yml").assert_ok()
    assert sorted(fleet.report_lines(broken)) == listener_lines(loadbalancer_document(2))
    assert http_backend_port(2) != 9090


def test_stale_facts_until_refreshed(run_playbook, emulator_fleet, workspace):
    cache = JsonfileCache(workspace / ".facts")
    fleet = Fleet(run_playbook, emulator_fleet, workspace, cache, fleet_scenarios(3))
    changing = "vm01"

    def change_port(port):
        fleet.emulators[changing].set_scenario(host_scenario(1, http_port=port))

    def smart_run(extra_args=()):
        before = fleet.request_counts()
        result = fleet.run(SMART_GATHER_PLAY, extra_args=extra_args)
        result.assert_ok()
        after = fleet.request_counts()
        asked = sorted(name for name in fleet.names if after[name] != before[name])
        return smart_gather_ports(result, fleet.names)[changing], asked

    # gathering = smart: the first play gathers every host, the next ones use the cache.
    assert smart_run() == (http_backend_port(1), fleet.names)
    assert cache.facts(changing)["_ansible_facts_gathered"] is True

    change_port(9090)
    assert smart_run() == (http_backend_port(1), []), "stale facts expected: the cache is still valid"
    fleet.run("report.yml").assert_ok()
    assert sorted(fleet.report_lines(changing)) == listener_lines(loadbalancer_document(1))

    # Refresh 1: gather.yml runs the module as a task, which always asks IMDS.
    fleet.run("gather.yml").assert_ok()
    refreshed = cache.facts(changing)["azure_loadbalancer"]
    assert facts_summary(refreshed) == expected_summary(loadbalancer_document(1, http_port=9090))
    assert smart_run() == (9090, [])

    # Refresh 2: the entry outlives fact_caching_timeout (3600 s in the example ansible.cfg).
    change_port(9191)
    cache.age(changing, 2 * 3600)
    assert smart_run() == (9191, [changing])

    # Refresh 3: --flush-cache empties the cache first, so every host is gathered again.
    change_port(9292)
    assert smart_run(extra_args=["--flush-cache"]) == (9292, fleet.names)

    # meta: clear_facts forgets a host's facts, in memory and in the cache.
    cleared = fleet.run("""
- name: Forget the facts of one host
  hosts: vm02
  gather_facts: false
  tasks:
    - name: Clear the facts of vm02
      ansible.builtin.meta: clear_facts
""")
    cleared.assert_ok()
    assert cache.facts("vm02") is None
    reported = fleet.run("report.yml")
    assert reported.rc != 0
    assert reported.task("Fail when the fact cache holds no load balancer facts for this host", host="vm02")["failed"]
    assert sorted(fleet.report_lines(changing)) == listener_lines(loadbalancer_document(1, http_port=9292))
