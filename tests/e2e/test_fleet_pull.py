# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Scale-set instances configuring themselves: ansible-pull checks out a git
# repository holding examples/fleet/pull/local.yml and runs it against the
# instance itself. The playbook reads the load balancer facts from the IMDS
# emulator and the imds.azure.nginx_frontends role starts a real nginx on the
# private IP and backend port of the load balancing rule.

import configparser
import json
import shlex
import shutil
import subprocess
import sys

from support.ansible_env import ansible_environment
from support.fleet import EXAMPLES, tool
from support.nginx import PRIVATE_V4, eventually
from support.paths import LOADBALANCER_PATH, REPO_ROOT
from support.recipes import parse_blocks


# The instance's private IP, on lo of the test's network namespace where nginx runs (support.nginx.lb_namespace).
PRIVATE_IP = PRIVATE_V4
FRONTEND_IP = "20.50.0.1"
COMMAND_TIMEOUT = 300


def instance_scenario(backend_port):
    rule = {"frontendIpAddress": FRONTEND_IP, "protocol": "tcp", "frontendPort": 80,
            "backendPort": backend_port, "privateIpAddress": PRIVATE_IP}
    return {
        "description": "A scale-set instance behind a Standard load balancer.",
        "loadbalancer": {"loadbalancer": {"publicIpAddresses": [], "inboundRules": [rule],
                                          "outboundRules": [{"frontendIpAddress": FRONTEND_IP,
                                                             "privateIpAddress": PRIVATE_IP}]}},
    }


def git(repository, *arguments, env):
    done = subprocess.run(["git", "-C", str(repository)] + list(arguments), env=env, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT, check=False)
    assert done.returncode == 0, "git %s failed:\n%s%s" % (" ".join(arguments), done.stdout, done.stderr)
    return done.stdout


def make_repository(path, env):
    """A git repository with the pull playbook at its root, as local.yml (ansible-pull's default name)."""
    path.mkdir()
    shutil.copy(EXAMPLES / "pull" / "local.yml", path / "local.yml")
    git(path, "init", "--quiet", "--initial-branch=main", env=env)
    git(path, "add", "local.yml", env=env)
    git(path, "-c", "user.name=Fleet Test", "-c", "user.email=fleet@example.invalid",
        "commit", "--quiet", "-m", "Configure nginx from the load balancer facts", env=env)
    return path


def test_ansible_pull_configures_the_instance_from_its_own_imds(
        collection_install, emulator, nginx_instance, free_ports, tmp_path, lb_namespace):
    backend_port, health_port = free_ports(2)
    imds = emulator(instance_scenario(backend_port))

    # Nothing from the machine's or the user's git configuration; modules run with this Python
    # (on an instance, interpreter discovery finds the system one).
    overrides = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"),
                 "GIT_TERMINAL_PROMPT": "0", "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    environment = ansible_environment(tmp_path, collection_install.path, overrides)
    repository = make_repository(tmp_path / "repository", environment)
    checkout = tmp_path / "checkout"

    variables = nginx_instance.role_vars(
        nginx_frontends_private_ips=[PRIVATE_IP],
        nginx_frontends_listen_all_addresses=True,
        nginx_frontends_sites={str(backend_port): {"root": str(nginx_instance.web_root)}},
        nginx_frontends_health_port=health_port,
    )
    variables["imds_endpoint"] = imds.endpoint
    vars_file = tmp_path / "pull-vars.json"
    vars_file.write_text(json.dumps(variables), encoding="utf-8")

    def pull(*options):
        command = [tool("ansible-pull"), "-U", repository.resolve().as_uri(), "-d", str(checkout),
                   "-i", "localhost,", "-c", "local", "-e", "@" + str(vars_file)] + list(options) + ["local.yml"]
        return subprocess.run(command, env=environment, cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)

    first = pull()
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    assert (checkout / "local.yml").read_bytes() == (EXAMPLES / "pull" / "local.yml").read_bytes()
    lb_requests = [entry for entry in imds.requests() if entry["path"].startswith(LOADBALANCER_PATH)]
    assert len(lb_requests) == 1 and lb_requests[0]["status"] == 200

    # The instance serves its site on the private IP and backend port of its rule, and answers the probe.
    page = eventually(lambda: lb_namespace.http_get(PRIVATE_IP, backend_port, "/"), lambda reply: getattr(reply, "status", None) == 200,
                      "nginx serving the site on %s:%d" % (PRIVATE_IP, backend_port))
    assert page.body == nginx_instance.index_text
    health = eventually(lambda: lb_namespace.http_get(PRIVATE_IP, health_port, "/healthz"),
                        lambda reply: getattr(reply, "status", None) == 200, "the health endpoint")
    assert health.status == 200
    assert nginx_instance.master_pid() is not None

    # A timer runs ansible-pull --only-if-changed: with nothing new in the repository it stops
    # after the checkout, without asking IMDS or touching nginx.
    again = pull("--only-if-changed")
    assert again.returncode == 0, again.stdout[-6000:] + again.stderr[-3000:]
    assert "Repository has not changed" in again.stdout + again.stderr
    assert len([entry for entry in imds.requests() if entry["path"].startswith(LOADBALANCER_PATH)]) == 1


def read_unit(name):
    """A systemd unit file of examples/fleet/pull as {section: {key: value}}, continuation lines joined."""
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((EXAMPLES / "pull" / name).read_text(encoding="utf-8").replace("\\\n", " "))
    return {section: dict(parser[section]) for section in parser.sections()}


def test_systemd_units_run_the_documented_pull_command():
    service = read_unit("imds-azure-pull.service")
    timer = read_unit("imds-azure-pull.timer")

    # The service runs the ansible-pull command that docs/fleet.md tells to run on an instance.
    documented = [block.text for block in parse_blocks(REPO_ROOT / "docs" / "fleet.md")
                  if block.lang == "sh" and block.text.startswith("ansible-pull -U https://")]
    assert len(documented) == 1, documented
    command = shlex.split(service["Service"]["ExecStart"])
    # Under the lock that the drain service takes too (docs/maintenance.md).
    assert command[:2] == ["/usr/bin/flock", "/run/lock/imds-azure.lock"]
    command = command[2:]
    assert command[0] == "/opt/ansible/bin/ansible-pull"
    assert command[1:] == shlex.split(documented[0].replace("\\\n", " "))[1:]
    # Oneshot: never two runs at once. No --only-if-changed: load balancer changes come without commits.
    assert service["Service"]["Type"] == "oneshot"
    assert "--only-if-changed" not in command
    assert service["Unit"]["After"] == "network-online.target"

    # A timer with no Unit= starts the service of its own name, at boot and then regularly.
    assert "Unit" not in timer["Timer"]
    assert (EXAMPLES / "pull" / "imds-azure-pull.service").is_file()
    assert set(timer["Timer"]) >= {"OnBootSec", "OnUnitActiveSec", "RandomizedDelaySec"}
    assert timer["Install"]["WantedBy"] == "timers.target"
