# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The drain before Azure maintenance (examples/maintenance/drain.yml, the
# imds.azure.maintenance_drain role) in front of a real nginx in the test's
# network namespace, with the IMDS emulator's scheduled events: a probe client
# sees the health path go to 503 while the site keeps serving, the emulator
# records the approval after the wait, and the run after the event ends puts
# the VM back. Events of other VMs, failed reads and check mode change nothing.
# Then the timer way: ansible-pull's checkout, the drain playbook run as the
# systemd unit runs it, and one IMDS request a run when there is nothing to do.

import json
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from support.ansible_env import ansible_environment, matrix_controllers
from support.fleet import tool
from support.matrix import nginx_check, nginx_private_paths, one_rule_vm_scenario
from support.nginx import HEALTH, PRIVATE_V4, HealthProbe, answer, eventually, inbound, run_role, scenario
from support.paths import EXAMPLES_DIR, REPO_ROOT
from support.recipes import parse_blocks

DRAIN_PLAYBOOK = EXAMPLES_DIR / "maintenance" / "drain.yml"
PULL_DIR = EXAMPLES_DIR / "fleet" / "pull"
EVENTS_PATH = "/metadata/scheduledevents"
# The emulator's default instance (compute.name), which the events name in Resources.
VM_NAME = "vm-web-01"
OTHER_VM = "vm-web-02"
DRAINING = (503, "draining\n")
# interval x threshold + connection seconds of the runs below.
PROBE_INTERVAL, PROBE_THRESHOLD, CONNECTION_SECONDS = 1, 2, 1
WAIT_SECONDS = PROBE_INTERVAL * PROBE_THRESHOLD + CONNECTION_SECONDS
EVENT_END_TIMEOUT = 90.0
COMMAND_TIMEOUT = 300
CONTROLLERS = matrix_controllers()


# --------------------------------------------------------------------------- the emulator's scheduled events


def event(event_id, resources=(VM_NAME,), event_type="Reboot", duration=30, **more):
    """One event as the emulator takes it: Azure's keys plus when it appears and its NotBefore."""
    document = {"EventId": event_id, "EventType": event_type, "ResourceType": "VirtualMachine",
                "Resources": list(resources), "EventStatus": "Scheduled", "Description": "Host server maintenance.",
                "EventSource": "Platform", "DurationInSeconds": duration, "not_before_in": 900}
    document.update(more)
    return document


def vm_scenario(port, events=(), **more):
    document = scenario(inbound("50.0.0.1", PRIVATE_V4, 80, port))
    document["scheduled_events"] = {"incarnation": 1, "events": list(events)}
    document.update(more)
    return document


def wait_until_no_events(imds):
    """Until the event has started and ended (the emulator computes its lifecycle when asked)."""
    deadline = time.monotonic() + EVENT_END_TIMEOUT
    while True:
        events = imds.scheduled_events()["Events"]
        if not events:
            return
        assert time.monotonic() < deadline, f"the event did not end within {EVENT_END_TIMEOUT:.0f}s: {events}"
        time.sleep(0.5)


# --------------------------------------------------------------------------- running the drain


class DrainSetup:
    """nginx serving a static site behind one rule, the health port, and the drain's own state paths."""

    def __init__(self, run_playbook, nginx_instance, imds, net, ports, state_root):
        self.run_playbook = run_playbook
        self.nginx = nginx_instance
        self.imds = imds
        self.net = net
        self.port, self.health_port = ports
        self.state_dir = state_root / "state"
        self.vm_name_file = state_root / "run" / "vm-name"
        self.site_vars = dict(nginx_frontends_sites={str(self.port): {"root": str(nginx_instance.web_root)}},
                              nginx_frontends_health_port=self.health_port)

    @property
    def state_file(self):
        return self.state_dir / "drained.json"

    def serve(self):
        """nginx in rotation, as the regular nginx_frontends run leaves it."""
        run_role(self.run_playbook, self.nginx, self.imds, **self.site_vars).assert_ok()
        self.assert_serving(HEALTH)

    def variables(self, **more):
        variables = self.nginx.role_vars(**self.site_vars)
        variables.update(imds_endpoint=self.imds.endpoint, imds_retry_timeout=0,
                         maintenance_drain_state_dir=str(self.state_dir),
                         maintenance_drain_vm_name_file=str(self.vm_name_file),
                         maintenance_drain_probe_interval=PROBE_INTERVAL,
                         maintenance_drain_probe_threshold=PROBE_THRESHOLD,
                         maintenance_drain_connection_seconds=CONNECTION_SECONDS)
        variables.update(more)
        return variables

    def drain(self, check=False, **more):
        return self.run_playbook(DRAIN_PLAYBOOK, extra_vars=self.variables(**more), check=check)

    def health(self, port):
        return answer(self.net, PRIVATE_V4, port, "/healthz")

    def assert_serving(self, health):
        """Both probe ports answer ``health`` (after nginx swapped its workers); the site serves throughout."""
        for port in (self.port, self.health_port):
            eventually(lambda port=port: self.health(port), lambda got: got == health, f"the probe on port {port}")
        assert answer(self.net, PRIVATE_V4, self.port) == (200, self.nginx.index_text)


def changed(result):
    return result.stats["localhost"]["changed"]


def drain_while_probing(setup):
    """Run the drain playbook while a probe client asks the health path every 50 ms.

    Returns the result and the probe's record: (time, health answer, site answer) per probe.
    """
    with HealthProbe(setup.net, setup.port, setup.port) as probe:
        result = setup.drain()
    return result, probe.record


def make_setup(run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tmp_path, events=(), **more):
    ports = free_ports(2)
    imds = emulator(vm_scenario(ports[0], events, **more))
    setup = DrainSetup(run_playbook, nginx_instance, imds, lb_namespace, ports, tmp_path)
    setup.serve()
    return setup


# --------------------------------------------------------------------------- the drain, end to end


def test_an_event_for_this_vm_drains_then_approves_then_the_vm_comes_back(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tmp_path):
    setup = make_setup(run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tmp_path)
    imds = setup.imds
    serving = nginx_instance.conf_path.read_bytes()

    # Nothing scheduled: the first run learns the VM name, later runs send one request and change nothing.
    setup.drain().assert_ok()
    assert setup.vm_name_file.read_text(encoding="utf-8") == VM_NAME + "\n"
    imds.reset()
    idle = setup.drain().assert_ok()
    assert changed(idle) == 0, idle.describe()
    assert [(entry["method"], entry["path"]) for entry in imds.requests()] == [("GET", EVENTS_PATH)]
    assert nginx_instance.conf_path.read_bytes() == serving and not setup.state_file.exists()

    # Azure schedules a reboot of this VM.
    event_id = "C6C4D5E8-6F2A-4B4A-9E0B-0D5E3C1B9A01"
    imds.add_scheduled_event(event(event_id))
    result, record = drain_while_probing(setup)
    result.assert_ok()

    # The probe saw 503 while the site kept serving, and the approval came only after the wait.
    drained_at = [when for when, health, _site in record if health == DRAINING]
    assert drained_at, f"the probe never saw the drain: {record[-5:]}"
    # Not one request dropped or refused, through the reload.
    assert all(site == (200, nginx_instance.index_text) for _when, _health, site in record), \
        [entry for entry in record if entry[2] != (200, nginx_instance.index_text)][:3]
    (approval,) = imds.approvals()
    assert approval["event_ids"] == [event_id] and approval["status"] == 200, approval
    assert approval["body"] == {"StartRequests": [{"EventId": event_id}]}, approval
    assert approval["time"] - drained_at[0] >= WAIT_SECONDS - 0.5, (approval["time"], drained_at[0])
    assert all(health == DRAINING for when, health, _site in record if when > drained_at[0] + 1.0)
    setup.assert_serving(DRAINING)
    state = json.loads(setup.state_file.read_text(encoding="utf-8"))
    assert state["event_ids"] == [event_id] and state["vm_name"] == VM_NAME, state
    assert result.task("Approve the events, so that Azure starts the maintenance now rather than at NotBefore")[
        "approved"] == [event_id]

    # While the maintenance goes on, a run keeps the drain and approves nothing again.
    drained = nginx_instance.conf_path.read_bytes()
    again = setup.drain().assert_ok()
    assert changed(again) == 0, again.describe()
    assert len(imds.approvals()) == 1
    assert nginx_instance.conf_path.read_bytes() == drained

    # The event ends (the VM came back): the next run puts it back in rotation.
    wait_until_no_events(imds)
    back = setup.drain().assert_ok()
    assert changed(back) > 0
    setup.assert_serving(HEALTH)
    assert not setup.state_file.exists()
    assert nginx_instance.conf_path.read_bytes() == serving
    assert changed(setup.drain().assert_ok()) == 0
    assert len(imds.approvals()) == 1


def test_events_that_are_not_this_vms_and_check_mode_change_nothing(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tmp_path):
    setup = make_setup(run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tmp_path)
    imds = setup.imds
    serving = nginx_instance.conf_path.read_bytes()
    master = nginx_instance.master_pid()

    def unchanged(result):
        assert changed(result) == 0, result.describe()
        assert nginx_instance.conf_path.read_bytes() == serving
        assert nginx_instance.master_pid() == master
        assert imds.approvals() == []
        assert not setup.state_file.exists()
        setup.assert_serving(HEALTH)

    setup.drain().assert_ok()  # learns the VM name

    # A Freeze of the availability set that names another VM only.
    imds.add_scheduled_event(event("0F9B7A32-1B55-4A4E-8E3D-AB4C0E7F0002", resources=[OTHER_VM], event_type="Freeze"))
    other = setup.drain().assert_ok()
    unchanged(other)
    assert other.task("Pick the events that take this VM out of service")["ansible_facts"][
        "maintenance_drain_events"] == []

    # An event of this VM whose type is not in maintenance_drain_event_types.
    imds.add_scheduled_event(event("0F9B7A32-1B55-4A4E-8E3D-AB4C0E7F0003", event_type="Freeze"))
    not_freeze = ["Reboot", "Redeploy", "Terminate"]
    unchanged(setup.drain(maintenance_drain_event_types=not_freeze).assert_ok())

    # Check mode with an event to act on: what would happen is reported, nothing happens.
    imds.add_scheduled_event(event("0F9B7A32-1B55-4A4E-8E3D-AB4C0E7F0004", event_type="Redeploy"))
    checked = setup.drain(check=True, maintenance_drain_event_types=not_freeze).assert_ok()
    assert checked.task("Approve the events, so that Azure starts the maintenance now rather than at NotBefore")[
        "approved"] == ["0F9B7A32-1B55-4A4E-8E3D-AB4C0E7F0004"]
    assert not [entry for entry in imds.requests() if entry["method"] == "POST"]
    assert nginx_instance.conf_path.read_bytes() == serving
    assert imds.approvals() == [] and not setup.state_file.exists()
    setup.assert_serving(HEALTH)


def test_a_failed_read_approves_nothing_and_keeps_the_serving_config(
        run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tmp_path):
    event_id = "5D1E0C3B-8A7F-4C2D-B6E5-7F8091A2B304"
    setup = make_setup(run_playbook, emulator, nginx_instance, free_ports, lb_namespace, tmp_path)
    imds = setup.imds
    serving = nginx_instance.conf_path.read_bytes()
    failing = vm_scenario(setup.port, [event(event_id)], faults=[{"path": EVENTS_PATH, "status": 500}])

    def failed_read(result):
        assert result.rc != 0, result.describe()
        message = result.task(
            "Fail because the scheduled events could not be read, with nothing changed and nothing approved")["msg"]
        assert "error_code" in message and "Nothing was changed and nothing was approved" in message, message
        assert "Traceback" not in result.stdout + result.stderr
        assert not [entry for entry in imds.requests() if entry["method"] == "POST"]
        assert imds.approvals() == []
        return message

    # In rotation: an event for this VM behind a failing read changes nothing.
    imds.set_scenario(failing)
    message = failed_read(setup.drain(maintenance_drain_vm_name=VM_NAME))
    assert "in rotation" in message, message
    assert nginx_instance.conf_path.read_bytes() == serving and not setup.state_file.exists()
    setup.assert_serving(HEALTH)

    # Drained: a failing read is not the end of the maintenance, the drain stays.
    imds.set_scenario(vm_scenario(setup.port, [event(event_id)]))
    setup.drain(maintenance_drain_approve=False).assert_ok()
    setup.assert_serving(DRAINING)
    drained, state = nginx_instance.conf_path.read_bytes(), setup.state_file.read_bytes()
    imds.set_scenario(vm_scenario(setup.port, [], faults=[{"path": EVENTS_PATH, "status": 500}]))
    message = failed_read(setup.drain())
    assert "drained since an earlier run" in message, message
    assert nginx_instance.conf_path.read_bytes() == drained and setup.state_file.read_bytes() == state
    setup.assert_serving(DRAINING)


# --------------------------------------------------------------------------- every supported ansible-core


@pytest.mark.parametrize("controller", CONTROLLERS, ids=[controller.release for controller in CONTROLLERS])
def test_the_drain_flow_on_every_supported_ansible_core(
        controller, run_playbook_with, emulator, nginx_binary, free_ports, tmp_path_factory):
    # Templating differs between releases (2.16 turns JSON-looking text into data, 2.19 keeps native types):
    # drain, approve and undrain with each controller; nginx only checks the files here (nginx -t).
    (port,) = free_ports(1)
    imds = emulator(dict(one_rule_vm_scenario(port), scheduled_events={"incarnation": 1, "events": []}))
    directory = tmp_path_factory.mktemp("drain-" + controller.release)
    conf_path, state_file = directory / "nginx.conf", directory / "state" / "drained.json"
    variables = dict(nginx_private_paths(directory), imds_endpoint=imds.endpoint, imds_retry_timeout=0,
                     maintenance_drain_state_dir=str(directory / "state"),
                     maintenance_drain_vm_name_file=str(directory / "vm-name"),
                     maintenance_drain_probe_interval=1, maintenance_drain_probe_threshold=1,
                     maintenance_drain_connection_seconds=0)

    def drain():
        result = run_playbook_with(controller, DRAIN_PLAYBOOK, extra_vars=variables).assert_ok()
        assert "Traceback" not in result.stdout + result.stderr, result.describe()
        return result

    event_id = "3E5C7A90-2B4D-4F6E-8A1C-9D0B2E4F6A08"
    imds.add_scheduled_event(event(event_id, duration=2))
    drain()
    assert imds.approved_event_ids() == [event_id]
    assert 'return 503 "draining' in conf_path.read_text(encoding="utf-8")
    state = json.loads(state_file.read_text(encoding="utf-8"))
    assert state["event_ids"] == [event_id] and isinstance(state["drained_at"], float), state

    wait_until_no_events(imds)
    drain()
    assert imds.approved_event_ids() == [event_id]
    assert not state_file.exists()
    config = conf_path.read_text(encoding="utf-8")
    assert 'return 200 "OK' in config and "503" not in config
    rc, output = nginx_check(nginx_binary, conf_path)
    assert rc == 0, output


# --------------------------------------------------------------------------- on each VM: the timer


def git(repository, *arguments, env):
    done = subprocess.run(["git", "-C", str(repository)] + list(arguments), env=env, capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT, check=False)
    assert done.returncode == 0, "git %s failed:\n%s%s" % (" ".join(arguments), done.stdout, done.stderr)


def unit_command(name):
    """The ExecStart of a unit of examples/fleet/pull, continuation lines joined, as an argument list."""
    text = (PULL_DIR / name).read_text(encoding="utf-8").replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line[len("ExecStart="):])


def test_the_drain_timer_polls_with_one_request_and_runs_the_flow_from_the_pull_checkout(
        collection_install, emulator, nginx_instance, free_ports, lb_namespace, tmp_path):
    net = lb_namespace
    port, health_port = free_ports(2)
    imds = emulator(vm_scenario(port))
    overrides = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": str(tmp_path / "gitconfig"),
                 "GIT_TERMINAL_PROMPT": "0", "ANSIBLE_PYTHON_INTERPRETER": sys.executable}
    environment = ansible_environment(tmp_path, collection_install.path, overrides)

    # The configuration repository: pull/local.yml and pull/drain.yml, as docs/maintenance.md says.
    repository = tmp_path / "web-config"
    (repository / "pull").mkdir(parents=True)
    shutil.copy(PULL_DIR / "local.yml", repository / "pull" / "local.yml")
    shutil.copy(DRAIN_PLAYBOOK, repository / "pull" / "drain.yml")
    git(repository, "init", "--quiet", "--initial-branch=main", env=environment)
    git(repository, "add", "pull", env=environment)
    git(repository, "-c", "user.name=Fleet Test", "-c", "user.email=fleet@example.invalid",
        "commit", "--quiet", "-m", "nginx from the load balancer facts, drained before maintenance", env=environment)
    checkout = tmp_path / "checkout"

    variables = nginx_instance.role_vars(
        nginx_frontends_sites={str(port): {"root": str(nginx_instance.web_root)}},
        nginx_frontends_health_port=health_port,
        imds_endpoint=imds.endpoint, imds_retry_timeout=0,
        maintenance_drain_state_dir=str(tmp_path / "state"),
        maintenance_drain_vm_name_file=str(tmp_path / "run" / "vm-name"),
        maintenance_drain_probe_interval=PROBE_INTERVAL, maintenance_drain_probe_threshold=PROBE_THRESHOLD,
        maintenance_drain_connection_seconds=CONNECTION_SECONDS)
    vars_file = tmp_path / "host-vars.json"
    vars_file.write_text(json.dumps(variables), encoding="utf-8")
    # The state file of the drain, which pull/local.yml reads through the role's state entry point.
    state_file = tmp_path / "state" / "drained.json"

    def run(command):
        done = subprocess.run(command, env=environment, cwd=str(tmp_path), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False)
        assert done.returncode == 0, " ".join(command) + "\n" + done.stdout[-6000:] + done.stderr[-3000:]
        return done

    # What the units run, with the checkout and the tools of this test in place of /var/lib and /opt.
    pull_command = unit_command("imds-azure-pull.service")[2:]
    drain_command = unit_command("imds-azure-drain.service")[2:]
    assert pull_command[0] == "/opt/ansible/bin/ansible-pull" and drain_command[0] == "/opt/ansible/bin/ansible-playbook"
    assert drain_command[-1] == "/var/lib/imds-azure-pull/pull/drain.yml"

    def pull():
        return run([tool("ansible-pull"), "-U", repository.as_uri(), "-d", str(checkout)]
                   + pull_command[5:-1] + ["-e", "@" + str(vars_file), pull_command[-1]])

    def drain():
        return run([tool("ansible-playbook")] + drain_command[1:-1]
                   + ["-e", "@" + str(vars_file), str(checkout / "pull" / "drain.yml")])

    def probe():
        return eventually(lambda: answer(net, PRIVATE_V4, health_port, "/healthz"), lambda got: got[0] in (200, 503),
                          "the probe")

    pull()
    assert eventually(lambda: answer(net, PRIVATE_V4, health_port, "/healthz"), lambda got: got == HEALTH,
                      "nginx in rotation") == HEALTH

    # The timer's runs with nothing to do: one IMDS request each once the VM name is known, nothing changed.
    drain()
    imds.reset()
    for _run in range(3):
        assert "changed=0" in drain().stdout
    assert [(entry["method"], entry["path"]) for entry in imds.requests()] == [("GET", EVENTS_PATH)] * 3

    # An event for this VM: the next timer run drains and approves.
    event_id = "7A3F9E21-4D6C-4F0B-8A2E-1C9D7B5E3F06"
    imds.add_scheduled_event(event(event_id, duration=15))
    drain()
    assert eventually(lambda: answer(net, PRIVATE_V4, health_port, "/healthz"), lambda got: got == DRAINING,
                      "the drain") == DRAINING
    assert [approval["event_ids"] for approval in imds.approvals()] == [[event_id]]
    assert state_file.exists()

    # The regular pull during the maintenance keeps the drain.
    pull()
    assert probe() == DRAINING
    assert answer(net, PRIVATE_V4, port) == (200, nginx_instance.index_text)

    # After the maintenance, the timer's next run puts the VM back.
    wait_until_no_events(imds)
    drain()
    assert eventually(lambda: answer(net, PRIVATE_V4, health_port, "/healthz"), lambda got: got == HEALTH,
                      "back in rotation") == HEALTH
    assert not state_file.exists()
    assert len(imds.approvals()) == 1


def test_the_drain_units_run_the_documented_command_under_the_pull_lock():
    drain_command, pull_command = unit_command("imds-azure-drain.service"), unit_command("imds-azure-pull.service")
    assert drain_command[:2] == pull_command[:2] == ["/usr/bin/flock", "/run/lock/imds-azure.lock"]
    documented = [block.text for block in parse_blocks(REPO_ROOT / "docs" / "maintenance.md")
                  if block.lang == "sh" and block.text.startswith("ansible-playbook -i localhost, -c local /var/lib")]
    assert len(documented) == 1, documented
    assert drain_command[2:] == ["/opt/ansible/bin/ansible-playbook"] + shlex.split(documented[0])[1:]

    timer = (PULL_DIR / "imds-azure-drain.timer").read_text(encoding="utf-8")
    assert "OnUnitActiveSec=1min" in timer and "AccuracySec=1s" in timer and "WantedBy=timers.target" in timer
    service = (PULL_DIR / "imds-azure-drain.service").read_text(encoding="utf-8")
    assert "Type=oneshot" in service
    assert "ConditionPathExists=/var/lib/imds-azure-pull/pull/drain.yml" in service
