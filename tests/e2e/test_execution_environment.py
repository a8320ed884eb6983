# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# AWX and Red Hat Ansible Automation Platform: they run jobs with
# ansible-runner, inside execution environments that ansible-builder makes.
#
# - examples/ee/execution-environment.yml goes through `ansible-builder
#   create` (building the image needs a container engine, which this machine
#   has not); the build context it writes is checked, and its galaxy and
#   introspection steps, which need no container, are run here: the collection
#   installs from the context with the EE's ansible-core, and ansible-builder
#   reads meta/execution-environment.yml.
# - examples/playbook.yml with examples/inventory.yml runs through
#   ansible-runner (process isolation off, as in an execution environment)
#   from a private data directory, and the facts are checked where AWX reads
#   them: in the job events and in the fact cache artifacts.

import json
import re
import shutil
import subprocess

import pytest
import yaml

from support.ansible_env import TOOLS_BIN, ansible_environment, matrix_controller, tool_path
from support.matrix import VM_PRIVATE_IP, nginx_check, nginx_private_paths, one_rule_vm_scenario
from support.paths import REPO_ROOT
from support.playbook import GALAXY_TIMEOUT, run_command


EE_DEFINITION = REPO_ROOT / "examples" / "ee" / "execution-environment.yml"
BUILDER_TIMEOUT = 180.0
RUNNER_TIMEOUT = 600.0
FACTS_TASK = "Gather the load balancer facts from IMDS"


def ee_core_release():
    """The ansible-core minor release the example execution environment pins ("2.16")."""
    definition = yaml.safe_load(EE_DEFINITION.read_text(encoding="utf-8"))
    pinned = re.fullmatch(r"ansible-core==(\d+\.\d+)\.\d+", definition["dependencies"]["ansible_core"]["package_pip"])
    assert pinned, definition["dependencies"]["ansible_core"]
    return pinned.group(1)


@pytest.fixture(scope="module")
def build_context(collection_install, tmp_path_factory):
    """`ansible-builder create` on a copy of examples/ee/ with the collection tarball where the example expects it."""
    workdir = tmp_path_factory.mktemp("ee")
    definition_dir = workdir / "ee"
    shutil.copytree(EE_DEFINITION.parent, definition_dir)
    (definition_dir / "collections").mkdir(exist_ok=True)
    shutil.copy2(collection_install.tarball, definition_dir / "collections")
    context = workdir / "context"
    done = subprocess.run([tool_path("ansible-builder"), "create", "-f", str(definition_dir / EE_DEFINITION.name),
                           "-c", str(context), "--output-filename", "Containerfile"],
                          cwd=str(workdir), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=BUILDER_TIMEOUT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return context


def test_build_context_installs_the_collection_with_the_pinned_ansible_core(build_context, collection_install):
    containerfile = (build_context / "Containerfile").read_text(encoding="utf-8")
    definition = yaml.safe_load(EE_DEFINITION.read_text(encoding="utf-8"))
    assert 'EE_BASE_IMAGE="%s"' % definition["images"]["base_image"]["name"] in containerfile
    assert definition["dependencies"]["ansible_core"]["package_pip"] in containerfile
    assert definition["dependencies"]["ansible_runner"]["package_pip"] in containerfile
    assert "ansible-galaxy collection install" in containerfile and "-r requirements.yml" in containerfile

    # The tarball the definition names is the one of this checkout's version, copied into the context.
    requirements = yaml.safe_load((build_context / "_build" / "requirements.yml").read_text(encoding="utf-8"))
    (entry,) = requirements["collections"]
    assert entry == {"name": "collections/" + collection_install.tarball.name, "type": "file"}
    assert (build_context / "_build" / entry["name"]).read_bytes() == collection_install.tarball.read_bytes()


def test_galaxy_and_introspection_steps_of_the_build(build_context, tmp_path):
    # What the image build's galaxy stage runs (in /build = _build), with the EE's ansible-core release.
    controller = matrix_controller(ee_core_release())
    collections = tmp_path / "collections"
    env = ansible_environment(tmp_path, collections, tools_bin=controller.bin_dir)
    installed = run_command([controller.tool("ansible-galaxy"), "collection", "install", "--offline", "-r",
                             "requirements.yml", "--collections-path", str(collections)], env, build_context / "_build",
                            GALAXY_TIMEOUT, "ansible-galaxy collection install -r requirements.yml")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    collection_dir = collections / "ansible_collections" / "imds" / "azure"
    assert (collection_dir / "meta" / "execution-environment.yml").is_file()

    def introspect():
        done = subprocess.run([controller.bin_dir / "python", str(build_context / "_build" / "scripts" / "introspect.py"),
                               "introspect", str(collections)], capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        return yaml.safe_load(done.stdout)

    # The collection adds no package to the image ...
    assert introspect() == {"python": [], "system": []}
    # ... and that is because ansible-builder reads its files and finds none, not because it missed them.
    with open(collection_dir / "meta" / "ee-requirements.txt", "a", encoding="utf-8") as requirements:
        requirements.write("redis>=4\n")
    assert introspect()["python"] == ["redis>=4  # from collection imds.azure"]


# --------------------------------------------------------------------------- ansible-runner


def write_private_data_dir(root, collections_path, tools_bin, extra_vars):
    """The layout AWX gives ansible-runner: project/, inventory/, env/; returns the job's environment.

    ansible settings (the installed collection, private temporary directories)
    go to env/envvars, as AWX passes them.
    """
    (root / "project").mkdir(parents=True)
    (root / "inventory").mkdir()
    (root / "env").mkdir()
    shutil.copy2(REPO_ROOT / "examples" / "playbook.yml", root / "project" / "playbook.yml")
    shutil.copy2(REPO_ROOT / "examples" / "inventory.yml", root / "inventory" / "inventory.yml")
    (root / "env" / "extravars").write_text(yaml.safe_dump(extra_vars), encoding="utf-8")
    (root / "work").mkdir()
    env = ansible_environment(root / "work", collections_path, tools_bin=tools_bin)
    runner_env = {name: value for name, value in env.items() if name.startswith("ANSIBLE_") or name == "PATH"}
    (root / "env" / "envvars").write_text(yaml.safe_dump(runner_env), encoding="utf-8")
    return env


def cached_facts(fact_cache, host):
    """Facts of host from ansible's jsonfile cache.

    ansible-core 2.19+ name the file after a schema tag and the host
    ("s1_localhost") and wrap the facts as JSON text under "__payload__";
    older releases use the host name and the facts object itself.
    """
    (path,) = [path for path in fact_cache.iterdir() if path.name == host or path.name.endswith("_" + host)]
    document = json.loads(path.read_text(encoding="utf-8"))
    payload = document.get("__payload__") if isinstance(document, dict) else None
    return json.loads(payload) if isinstance(payload, str) else document


@pytest.mark.parametrize("release", [None, "2.16"], ids=["venv", "ansible-core-2.16"])
def test_example_playbook_through_ansible_runner(release, request, emulator, nginx_binary, free_ports, tmp_path):
    # ansible-runner runs whichever ansible-playbook comes first on PATH: .venv's, or 2.16 as in AAP 2.5 and 2.6.
    if release is None:
        collections_path, tools_bin = request.getfixturevalue("collection_install").path, TOOLS_BIN
    else:
        controller = matrix_controller(release)
        collections_path = request.getfixturevalue("matrix_collection")(controller).path
        tools_bin = controller.bin_dir
    (port,) = free_ports(1)
    imds = emulator(one_rule_vm_scenario(port))
    nginx_dir = tmp_path / "nginx"
    nginx_dir.mkdir()
    private_data_dir = tmp_path / "runner"
    env = write_private_data_dir(private_data_dir, collections_path, tools_bin,
                                 dict(nginx_private_paths(nginx_dir), imds_endpoint=imds.endpoint))
    # Process isolation stays off (ansible-runner's default), as inside an execution environment.
    process_env = {name: value for name, value in env.items() if not name.startswith("ANSIBLE_")}
    done = subprocess.run([tool_path("ansible-runner"), "run", str(private_data_dir), "-p", "playbook.yml",
                           "--ident", "job1"],
                          env=process_env, cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=RUNNER_TIMEOUT, check=False)
    artifacts = private_data_dir / "artifacts" / "job1"
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert (artifacts / "rc").read_text(encoding="utf-8").strip() == "0"
    assert (artifacts / "status").read_text(encoding="utf-8").strip() == "successful"
    command = json.loads((artifacts / "command").read_text(encoding="utf-8"))
    assert command["command"][0] == "ansible-playbook" and (tools_bin / "ansible-playbook").exists()
    assert command["env"]["PATH"].split(":")[0] == str(tools_bin)

    events = [json.loads(path.read_text(encoding="utf-8")) for path in sorted((artifacts / "job_events").glob("*.json"))]
    facts_events = [event for event in events if event.get("event") == "runner_on_ok"
                    and event["event_data"].get("task") == FACTS_TASK]
    assert [event["event_data"]["host"] for event in facts_events] == ["localhost"]
    from_events = facts_events[0]["event_data"]["res"]["ansible_facts"]["azure_loadbalancer"]
    assert from_events["available"] is True
    assert from_events["private_ips"] == [VM_PRIVATE_IP] and from_events["backend_ports"] == [port]
    assert from_events["frontend_ips"] == ["50.0.0.1", "51.0.0.1"]
    # Neither the facts module nor the role failed or skipped a host; the play recap says so too.
    assert not [event for event in events if event.get("event") in ("runner_on_failed", "runner_on_unreachable")]
    (stats,) = [event for event in events if event.get("event") == "playbook_on_stats"]
    assert stats["event_data"]["ok"].get("localhost", 0) > 0 and not stats["event_data"]["failures"]

    # AWX keeps facts from the fact cache the job leaves in its artifacts.
    assert cached_facts(artifacts / "fact_cache", "localhost")["azure_loadbalancer"] == from_events

    # The role in the example playbook wrote a configuration that nginx accepts.
    rc, output = nginx_check(nginx_binary, nginx_dir / "nginx.conf")
    assert rc == 0, output
