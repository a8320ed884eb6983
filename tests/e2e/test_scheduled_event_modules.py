# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The scheduled events modules as users run them: the collection built and
# installed, real ansible-playbook runs against the emulator's scheduled
# events endpoint, whose record of approvals says what reached "Azure".

import json
import time

import pytest

from support.ansible_env import OLD_TARGET_PYTHON_VERSIONS, TARGET_PYTHON_VERSIONS, matrix_controller, target_python
from support.paths import SCENARIO_DIR

VM = "vm-web-01"
REBOOT_ID = "C7061BAC-AFDC-4513-B24B-AA5F13A16123"

# A play whose modules talk to each host's emulator (imds_endpoint), followed by its tasks.
PLAY = """
- name: {name}
  hosts: all
  gather_facts: false
  module_defaults:
    group/imds.azure.imds:
      endpoint: "{{{{ imds_endpoint }}}}"
      retry_timeout: 5
  tasks:
"""

INFO_APPROVE_INFO = PLAY.format(name="Read, approve, read again") + """
    - name: Read the scheduled events
      imds.azure.scheduled_events_info:
      register: before

    - name: Approve this VM's events
      imds.azure.scheduled_event_approve:
        event_ids: "{{ before.scheduled_events.for_this_vm | map(attribute='id') | list }}"
      register: approval

    - name: Read them after the approval
      imds.azure.scheduled_events_info:
      register: after

    - name: Approve the same events again
      imds.azure.scheduled_event_approve:
        event_ids: "{{ before.scheduled_events.for_this_vm | map(attribute='id') | list }}"
      register: again
"""


def scheduled_reboot(duration=120):
    """The bundled scheduled-reboot scenario with a longer impact, so that a slow run still sees the event Started."""
    scenario = json.loads((SCENARIO_DIR / "scheduled-reboot.json").read_text(encoding="utf-8"))
    scenario["scheduled_events"]["events"][0]["DurationInSeconds"] = duration
    return scenario


def local(endpoint, **host_vars):
    return {"all": {"hosts": {"localhost": dict(ansible_connection="local", imds_endpoint=endpoint, **host_vars)}}}


def scheduled_requests(imds):
    return [entry for entry in imds.requests() if entry["path"] == "/metadata/scheduledevents"]


def test_this_vms_event_is_reported_approved_once_and_then_started(emulator, run_playbook):
    imds = emulator(scheduled_reboot())
    installed = time.time()
    result = run_playbook(INFO_APPROVE_INFO, inventory=local(imds.endpoint)).assert_ok()

    before = result.task("Read the scheduled events")
    assert before["changed"] is False
    events = before["scheduled_events"]
    assert events["vm_name"] == VM
    assert [event["id"] for event in events["events"]] == [REBOOT_ID]
    assert events["for_this_vm"] == events["events"]
    event = events["events"][0]
    assert (event["type"], event["status"], event["resources"], event["duration_seconds"]) == \
        ("Reboot", "Scheduled", [VM], 120)
    # NotBefore is 900 s after the event appeared, in RFC 1123: the module gives it as ISO 8601 and epoch.
    assert installed + 900 - 60 <= event["not_before_epoch"] <= time.time() + 900 + 1
    assert event["not_before"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(event["not_before_epoch"]))
    assert before["imds_requests"] == 2  # the events and the VM name

    approval = result.task("Approve this VM's events")
    assert approval["changed"] is True
    assert (approval["approved"], approval["already_started"], approval["not_found"], approval["not_for_this_vm"]) == \
        ([REBOOT_ID], [], [], [])
    assert approval["imds_requests"] == 3

    after = result.task("Read them after the approval")["scheduled_events"]
    assert [event["status"] for event in after["events"]] == ["Started"]
    assert after["incarnation"] == events["incarnation"] + 1

    again = result.task("Approve the same events again")
    assert again["changed"] is False
    assert again["already_started"] == [REBOOT_ID] and again["approved"] == []

    # Exactly one approval reached the emulator, with the documented body, and nothing else was POSTed.
    approvals = imds.approvals()
    assert [(entry["status"], entry["event_ids"]) for entry in approvals] == [(200, [REBOOT_ID])]
    assert approvals[0]["body"] == {"StartRequests": [{"EventId": REBOOT_ID}]}
    posts = [entry for entry in imds.requests() if entry["method"] == "POST"]
    assert [entry["path"] for entry in posts] == ["/metadata/scheduledevents"]
    assert all(entry["headers"].get("Metadata") == "true" and "X-Forwarded-For" not in entry["headers"]
               for entry in imds.requests())


def test_check_mode_reports_the_approval_and_sends_none(emulator, run_playbook):
    imds = emulator("scheduled-reboot")
    result = run_playbook(INFO_APPROVE_INFO, inventory=local(imds.endpoint), check=True).assert_ok()
    assert result.task("Approve this VM's events")["approved"] == [REBOOT_ID]
    assert result.task("Approve this VM's events")["changed"] is True
    assert result.task("Read them after the approval")["scheduled_events"]["events"][0]["status"] == "Scheduled"
    assert imds.approvals() == []
    assert all(entry["method"] == "GET" for entry in imds.requests())


OTHER_VM_PLAY = PLAY.format(name="An event of the availability set that names other VMs only") + """
    - name: Read the scheduled events
      imds.azure.scheduled_events_info:
      register: seen

    - name: Try to approve every event, this VM's or not
      imds.azure.scheduled_event_approve:
        event_ids: "{{ seen.scheduled_events.events | map(attribute='id') | list + ['00000000-0000-0000-0000-000000000000'] }}"
      register: approval
"""


def test_event_for_other_vms_is_reported_and_never_approved(emulator, run_playbook):
    imds = emulator("scheduled-other-vm")
    result = run_playbook(OTHER_VM_PLAY, inventory=local(imds.endpoint)).assert_ok()
    seen = result.task("Read the scheduled events")["scheduled_events"]
    assert len(seen["events"]) >= 1 and seen["for_this_vm"] == []
    assert all(VM not in [name.lower() for name in event["resources"]] for event in seen["events"])
    approval = result.task("Try to approve every event, this VM's or not")
    assert approval["changed"] is False and approval["approved"] == []
    assert approval["not_for_this_vm"] == [event["id"] for event in seen["events"]]
    assert approval["not_found"] == ["00000000-0000-0000-0000-000000000000"]
    assert imds.approvals() == []


def test_event_that_appears_later_for_this_vm_in_other_letter_case(emulator, run_playbook):
    imds = emulator("documented")
    imds.add_scheduled_event({
        "EventId": "2B0E64E1-9B3B-4C0A-9D6E-35B56F1C2D4E", "EventStatus": "Scheduled", "EventType": "Freeze",
        "ResourceType": "VirtualMachine", "Resources": ["vm-web-02", VM.upper()], "Description": "Host maintenance",
        "EventSource": "Platform", "DurationInSeconds": -1, "not_before_in": 900,
    })
    result = run_playbook(INFO_APPROVE_INFO, inventory=local(imds.endpoint)).assert_ok()
    before = result.task("Read the scheduled events")["scheduled_events"]
    assert [event["id"] for event in before["for_this_vm"]] == ["2B0E64E1-9B3B-4C0A-9D6E-35B56F1C2D4E"]
    assert before["for_this_vm"][0]["duration_seconds"] is None
    assert result.task("Approve this VM's events")["approved"] == ["2B0E64E1-9B3B-4C0A-9D6E-35B56F1C2D4E"]
    assert imds.approved_event_ids() == ["2B0E64E1-9B3B-4C0A-9D6E-35B56F1C2D4E"]


def test_no_events_is_a_quiet_success(emulator, run_playbook):
    imds = emulator("documented")
    result = run_playbook(INFO_APPROVE_INFO, inventory=local(imds.endpoint)).assert_ok()
    events = result.task("Read the scheduled events")["scheduled_events"]
    assert events["events"] == [] and events["for_this_vm"] == []
    assert result.task("Approve this VM's events")["changed"] is False
    assert imds.approvals() == []


def test_a_failed_read_approves_nothing(emulator, run_playbook):
    imds = emulator("scheduled-reboot")
    imds.set_scenario(dict(imds.scenario(), faults=[{"path": "/metadata/scheduledevents", "status": 503}]))
    result = run_playbook(
        f"""
        - name: Approve while IMDS fails
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Approve the reboot
              imds.azure.scheduled_event_approve:
                endpoint: {imds.endpoint}
                event_ids: ["{REBOOT_ID}"]
                retry_timeout: 1
              register: approval
              ignore_errors: true
        """
    ).assert_ok()
    approval = result.task("Approve the reboot")
    assert approval["failed"] is True
    assert approval["error_code"] == "unavailable"
    assert "approved" not in approval
    assert approval["imds_requests"] >= 2, "the 503 was retried"
    assert imds.approvals() == []


@pytest.mark.parametrize("timeout, outcome", [(None, "ok"), (1, "timeout")])
def test_slow_first_call_needs_the_long_default_timeout(emulator, run_playbook, timeout, outcome):
    imds = emulator("scheduled-slow-start")
    delay = imds.scenario()["scheduled_events"]["first_call_delay"]
    options = f"timeout: {timeout}" if timeout else "vm_name: " + VM
    result = run_playbook(
        f"""
        - name: The first scheduled events call of a VM
          hosts: localhost
          gather_facts: false
          tasks:
            - name: Read the scheduled events
              imds.azure.scheduled_events_info:
                endpoint: {imds.endpoint}
                retry_timeout: 0
                {options}
              register: first
              ignore_errors: true
        """
    ).assert_ok()
    first = result.task("Read the scheduled events")
    if outcome == "ok":
        assert not first.get("failed"), first
        assert first["scheduled_events"]["events"] == []
        assert first["imds_seconds"] >= delay
        assert len(scheduled_requests(imds)) == 1
    else:
        assert first["failed"] is True and first["error_code"] == "timeout"
        assert first["imds_seconds"] < delay


def run_on_pythons(versions, emulator_fleet, run):
    """INFO_APPROVE_INFO on one emulated VM per host Python; each approves its own reboot exactly once."""
    interpreters = {version: target_python(version) for version in versions}
    assert None not in interpreters.values(), "every host Python must be installed: %s" % interpreters
    names = {version: "py" + version.replace(".", "") for version in versions}
    fleet = emulator_fleet({name: scheduled_reboot() for name in names.values()})
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": interpreters[version],
                    "imds_endpoint": fleet.endpoints[name]} for version, name in names.items()}
    result = run(INFO_APPROVE_INFO, {"all": {"hosts": hosts}}).assert_ok()
    assert "Traceback" not in result.stdout + result.stderr
    for name in names.values():
        assert result.task("Approve this VM's events", name)["approved"] == [REBOOT_ID], name
        assert result.task("Read them after the approval", name)["scheduled_events"]["events"][0]["status"] == "Started"
        assert fleet[name].approved_event_ids() == [REBOOT_ID], name


def test_modules_on_every_target_python(emulator_fleet, run_playbook):
    run_on_pythons(TARGET_PYTHON_VERSIONS, emulator_fleet,
                   lambda playbook, inventory: run_playbook(playbook, inventory=inventory, extra_args=["--forks", "6"]))


@pytest.mark.parametrize("release", sorted(set(OLD_TARGET_PYTHON_VERSIONS.values())))
def test_modules_on_older_target_pythons(release, emulator_fleet, run_playbook_with):
    # RHEL 8's Python 3.6 and 3.7, through the oldest ansible-core that still runs modules on them.
    controller = matrix_controller(release)
    versions = sorted(version for version, oldest in OLD_TARGET_PYTHON_VERSIONS.items() if oldest == release)
    run_on_pythons(versions, emulator_fleet,
                   lambda playbook, inventory: run_playbook_with(controller, playbook, inventory=inventory))
