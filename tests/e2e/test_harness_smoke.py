# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The end-to-end fixtures themselves: the installed collection is the checkout,
# playbook results are parsed per task, the emulator starts, answers, records,
# switches scenarios and stops, says which address it cannot listen on, and
# the example playbook runs against it.

import ipaddress
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from support.paths import LOADBALANCER_URL_PATH, REPO_ROOT
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def imds_get(endpoint, path, metadata=True):
    """GET an IMDS path from the emulator; returns (status, parsed JSON body)."""
    request = urllib.request.Request(endpoint + path)
    if metadata:
        request.add_header("Metadata", "true")
    try:
        with DIRECT.open(request, timeout=10) as response:
            return response.status, json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read().decode("utf-8"))


def test_installed_collection_is_the_checkout(collection_install):
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
    manifest = json.loads((collection_install.collection_dir / "MANIFEST.json").read_text(encoding="utf-8"))

    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == (galaxy["namespace"], galaxy["name"], galaxy["version"])
    assert collection_install.version == galaxy["version"]

    checkout_plugins = sorted(
        path.relative_to(REPO_ROOT) for path in (REPO_ROOT / "plugins").rglob("*.py") if "__pycache__" not in path.parts
    )
    assert checkout_plugins, "the checkout has no plugins to compare"
    for relative in checkout_plugins:
        installed = collection_install.collection_dir / relative
        assert installed.read_bytes() == (REPO_ROOT / relative).read_bytes(), relative


def test_run_playbook_reports_each_task(run_playbook, collection_install):
    result = run_playbook(
        """
        - name: Harness check
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Wrap the extra var with a community.general filter
              ansible.builtin.set_fact:
                wrapped: "{{ greeting | community.general.dict_kv('greeting') }}"
            - name: Read the collections path ansible was given
              ansible.builtin.debug:
                msg: "{{ lookup('ansible.builtin.env', 'ANSIBLE_COLLECTIONS_PATH') }}"
        """,
        extra_vars={"greeting": "hello from the harness"},
    )
    result.assert_ok()

    wrapped = result.task("Wrap the extra var with a community.general filter")["ansible_facts"]["wrapped"]
    assert wrapped == {"greeting": "hello from the harness"}
    assert result.task("Read the collections path ansible was given")["msg"] == str(collection_install.path)
    assert result.task_names("localhost") == [
        "Wrap the extra var with a community.general filter",
        "Read the collections path ansible was given",
    ]
    assert result.stats["localhost"]["ok"] == 2
    assert result.stats["localhost"]["failures"] == 0


def test_run_playbook_reports_failures(run_playbook):
    result = run_playbook(
        """
        - name: Harness failure check
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Fail on purpose
              ansible.builtin.fail:
                msg: the harness should see this
            - name: Never reached
              ansible.builtin.debug:
                msg: unreachable
        """
    )
    assert result.rc == 2
    failed = result.task("Fail on purpose")
    assert failed["failed"] is True
    assert failed["msg"] == "the harness should see this"
    assert "Never reached" not in result.task_names()
    assert "the harness should see this" in result.describe()
    with pytest.raises(AssertionError, match="no result for task 'Never reached'"):
        result.task("Never reached")


def test_run_playbook_without_report_keeps_the_error(run_playbook):
    result = run_playbook("- name: Broken\n  hosts: localhost\n  tasks: not-a-list\n")
    assert result.rc != 0
    assert result.report is None
    assert result.results == []
    assert "tasks" in result.stderr


def test_run_playbook_check_mode_changes_nothing(run_playbook, tmp_path):
    target = tmp_path / "written-by-ansible.txt"
    playbook = f"""
        - name: Harness check mode
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Write a file
              ansible.builtin.copy:
                content: "check mode\\n"
                dest: "{target}"
                mode: "0644"
        """
    dry = run_playbook(playbook, check=True).assert_ok()
    assert dry.task("Write a file")["changed"] is True
    assert not target.exists()

    real = run_playbook(playbook).assert_ok()
    assert real.task("Write a file")["changed"] is True
    assert target.read_text(encoding="utf-8") == "check mode\n"


def test_run_playbook_takes_inventory_text_and_dicts(run_playbook):
    playbook = """
        - name: Harness inventory check
          hosts: all
          gather_facts: false
          tasks:
            - name: Report the inventory variable
              ansible.builtin.debug:
                msg: "{{ colour }}"
        """
    ini = run_playbook(playbook, inventory="[all]\nlocalhost ansible_connection=local colour=blue\n").assert_ok()
    assert ini.task("Report the inventory variable")["msg"] == "blue"

    as_dict = {"all": {"hosts": {"localhost": {"ansible_connection": "local", "colour": "green"}}}}
    structured = run_playbook(playbook, inventory=as_dict).assert_ok()
    assert structured.task("Report the inventory variable")["msg"] == "green"


def test_emulator_serves_records_and_switches_scenarios(emulator):
    imds = emulator("documented")
    assert imds.endpoint.startswith("http://127.0.0.1:")

    status, document = imds_get(imds.endpoint, LOADBALANCER_URL_PATH)
    assert status == 200
    assert document == imds.scenario()["loadbalancer"]

    recorded = imds.requests()
    assert [(entry["method"], entry["path"], entry["status"]) for entry in recorded] == [("GET", "/metadata/loadbalancer", 200)]
    assert recorded[0]["headers"].get("Metadata") == "true"

    imds.set_scenario({"description": "not behind a Standard load balancer", "loadbalancer_error": "no_metadata"})
    status, document = imds_get(imds.endpoint, LOADBALANCER_URL_PATH)
    assert status == 404
    assert "No load balancer metadata is found" in document["error"]

    imds.stop()
    assert not imds.running
    with pytest.raises(urllib.error.URLError):
        imds_get(imds.endpoint, LOADBALANCER_URL_PATH)


def test_emulator_takes_a_scenario_dict(emulator):
    served = {"loadbalancer": {"publicIpAddresses": [], "inboundRules": [], "outboundRules": []}}
    imds = emulator({"description": "empty lists", "loadbalancer": served})
    assert imds_get(imds.endpoint, LOADBALANCER_URL_PATH) == (200, served)


def test_emulator_rejects_an_invalid_scenario_clearly(emulator):
    imds = emulator("documented")
    with pytest.raises(AssertionError, match="answered 400"):
        imds.set_scenario({"no_such_key": True})


def test_emulator_fleet_serves_each_host_its_own_scenario(emulator_fleet):
    fleet = emulator_fleet({"web1": "documented", "web2": {"loadbalancer_error": "no_metadata"}})
    assert sorted(fleet.endpoints) == ["web1", "web2"]
    assert fleet.endpoints["web1"] != fleet.endpoints["web2"]

    assert imds_get(fleet.endpoints["web1"], LOADBALANCER_URL_PATH)[0] == 200
    assert imds_get(fleet.endpoints["web2"], LOADBALANCER_URL_PATH)[0] == 404
    assert imds_get(fleet.endpoints["web2"], LOADBALANCER_URL_PATH)[0] == 404

    assert len(fleet["web1"].requests()) == 1
    assert len(fleet["web2"].requests()) == 2


def served_frontend_ips(document):
    """The distinct frontend addresses in a load balancer IMDS document, canonical."""
    body = document.get("loadbalancer", document)
    addresses = set()
    for section in ("publicIpAddresses", "inboundRules", "outboundRules"):
        for entry in body.get(section, []):
            addresses.add(str(ipaddress.ip_address(entry["frontendIpAddress"])))
    return addresses


def test_example_playbook_gathers_the_emulated_load_balancer(emulator, run_playbook, tmp_path):
    imds = emulator("documented")
    nginx_conf = tmp_path / "nginx" / "nginx.conf"
    nginx_conf.parent.mkdir()
    # As tools/demo.sh runs it: nginx.conf outside /etc, listening on all addresses
    # because the scenario's private IPs are not on this machine.
    nginx_vars = {
        "nginx_frontends_conf_path": str(nginx_conf),
        "nginx_frontends_pid_path": str(nginx_conf.parent / "nginx.pid"),
        "nginx_frontends_error_log": str(nginx_conf.parent / "error.log"),
        "nginx_frontends_access_log": str(nginx_conf.parent / "access.log"),
        "nginx_frontends_http_includes": [],
        "nginx_frontends_listen_all_addresses": True,
    }
    result = run_playbook(
        REPO_ROOT / "examples" / "playbook.yml",
        inventory=REPO_ROOT / "examples" / "inventory.yml",
        extra_vars={"imds_endpoint": imds.endpoint, **nginx_vars},
    ).assert_ok()

    facts = result.task("Gather the load balancer facts from IMDS")["ansible_facts"]["azure_loadbalancer"]
    assert facts["available"] is True
    assert set(facts["frontend_ips"]) == served_frontend_ips(imds.scenario()["loadbalancer"])
    shown = result.task("Show the load balancer facts")["ansible_facts.azure_loadbalancer"]
    assert shown == facts
    assert {entry["path"] for entry in imds.requests()} == {"/metadata/loadbalancer"}

    rendered = nginx_conf.read_text()
    for port in facts["backend_ports"]:
        # Listen parameters (so_keepalive=...) may follow the address.
        assert f"listen *:{port};" in rendered or f"listen *:{port} " in rendered
        assert f"listen [::]:{port};" in rendered or f"listen [::]:{port} " in rendered
    for rule in facts["inbound_rules"]:
        assert rule["frontend_ip_address"] in rendered, "server_name lists the rules' frontend IPs"
    checked = subprocess.run(["nginx", "-t", "-q", "-c", str(nginx_conf)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_emulator_names_the_address_it_cannot_listen_on(tmp_path):
    # A port already taken (another emulator, a service): the one-line error says which.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fleet_file = tmp_path / "fleet.json"
        fleet_file.write_text(json.dumps({"hosts": [{"name": "vm01", "scenario": "documented", "port": 0},
                                                    {"name": "vm02", "scenario": "empty", "port": port}]}))
        for arguments, host in ((["--scenario", "documented", "--port", str(port)], "default"),
                                (["--fleet", str(fleet_file)], "vm02")):
            done = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "imds_emulator.py")] + arguments,
                                  capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 2
            assert done.stderr == "imds_emulator: error: cannot listen on 127.0.0.1:%d (%s): Address already in use\n" % (
                port, host)
