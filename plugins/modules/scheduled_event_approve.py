#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: scheduled_event_approve
short_description: Approve Azure Scheduled Events so that maintenance starts now
version_added: 0.2.0
description:
  - Approves Azure Scheduled Events by id with the C(POST) to C(/metadata/scheduledevents) that Azure documents
    (a JSON body whose C(StartRequests) list each C(EventId)), so that the maintenance starts without waiting for its
    C(NotBefore) time. Approve only once the VM is ready, for example out of its load balancer's rotation.
  - Reads the events first and approves, in one request, only the requested ids that are in the document, are still
    C(Scheduled) and, by default, affect this VM. Unknown ids, events that have already started and events of other
    VMs are reported in the result, never an error; the task is C(changed) only when it approved something.
  - An event that is not approved starts anyway when its C(NotBefore) time passes.
  - The first scheduled events request of a VM can take about two minutes; the default I(timeout) allows for it.
author:
  - imds.azure maintainers (@imds-azure)
extends_documentation_fragment:
  # First: its timeout replaces the one of the shared fragment.
  - imds.azure.imds.SCHEDULED_EVENTS
  - imds.azure.imds
  - imds.azure.imds.ATTRIBUTES
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module reads the events and reports what it would approve, without approving anything.
  diff_mode:
    support: none
options:
  event_ids:
    description:
      - The C(EventId) of each event to approve, for example from the C(for_this_vm) events of
        M(imds.azure.scheduled_events_info). Compared without regard to letter case.
      - An empty list approves nothing.
    type: list
    elements: str
    required: true
  only_this_vm:
    description:
      - Approve only events whose C(Resources) name this VM (see I(vm_name)); the others are reported in
        C(not_for_this_vm).
      - C(false) approves events of other VMs of the same availability set or placement group too, which starts their
        maintenance as well; the VM name is then not needed and not read.
    type: bool
    default: true
seealso:
  - module: imds.azure.scheduled_events_info
  - name: Azure Metadata Service, Scheduled Events for Linux VMs
    description: Microsoft's description of the endpoint and of approving events.
    link: https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events
'''

EXAMPLES = r'''
- name: Read the scheduled events of this VM
  imds.azure.scheduled_events_info:
  register: maintenance

- name: Approve this VM's events once it is out of rotation
  imds.azure.scheduled_event_approve:
    event_ids: "{{ maintenance.scheduled_events.for_this_vm | map(attribute='id') | list }}"
  register: approval
  when: maintenance.scheduled_events.for_this_vm | length > 0

- name: Say what was approved and what was not
  ansible.builtin.debug:
    msg: >-
      approved {{ approval.approved }}, already started {{ approval.already_started }},
      gone {{ approval.not_found }}
  when: approval is not skipped
'''

RETURN = r'''
approved:
  description: The ids approved (sent in the C(POST)), or that would be in check mode, as the document spells them.
  returned: success
  type: list
  elements: str
  sample: ["f020ba2e-3bc0-4c40-a10b-86575a9eabd5"]
already_started:
  description: Requested ids of events that are no longer C(Scheduled) (they have C(Started)); nothing to approve.
  returned: success
  type: list
  elements: str
  sample: []
not_found:
  description: Requested ids that are not in the document (never scheduled, or the event has ended).
  returned: success
  type: list
  elements: str
  sample: []
not_for_this_vm:
  description: Requested ids of events that do not name this VM, left alone because of I(only_this_vm).
  returned: success
  type: list
  elements: str
  sample: []
incarnation:
  description: C(DocumentIncarnation) of the document the decision was made on.
  returned: success
  type: int
  sample: 2
vm_name:
  description: The VM name events were matched against; null with I(only_this_vm=false).
  returned: success
  type: str
  sample: vm-web-01
changed:
  description: Whether an event was approved (or would be, in check mode).
  returned: always
  type: bool
  sample: true
error_code:
  description:
    - What went wrong, as one word, to test in C(failed_when) or C(until).
    - For example C(invalid_metadata) (the events could not be trusted, so nothing was approved), C(bad_request)
      (IMDS refused the approval), C(timeout), C(not_azure).
    - C(docs/troubleshooting.md) in the collection explains every code and what to do about it.
  returned: failure
  type: str
  sample: timeout
status:
  description: The HTTP status of the IMDS answer the module failed on; null when there was no answer.
  returned: failure
  type: int
  sample: 400
imds_requests:
  description:
    - How many requests the module sent to IMDS, retries included (a connection attempt counts as one).
    - One for the events, one for the VM name unless I(vm_name) is given or I(only_this_vm=false), one for the
      approval when there is something to approve outside check mode.
  returned: always
  type: int
  sample: 3
imds_seconds:
  description: Seconds the module spent on IMDS, waits between retries included.
  returned: always
  type: float
  sample: 0.021
'''

from ansible_collections.imds.azure.plugins.module_utils._imds_module import ImdsModule, run_module
from ansible_collections.imds.azure.plugins.module_utils._scheduled_events import (
    SCHEDULED_EVENTS_PATH,
    plan_approval,
    read_scheduled_events,
    read_vm_name,
    scheduled_events_argument_spec,
    start_requests,
)


def approve_events(client, params, check_mode):
    """Read the events, approve the requested ones that may be, and say what became of each id."""
    api_version = params['api_version']
    document = read_scheduled_events(client, api_version)
    vm_name = read_vm_name(client, params['vm_name']) if params['only_this_vm'] else None
    plan = plan_approval(document['events'], params['event_ids'], vm_name, params['only_this_vm'])
    if plan['approved'] and not check_mode:
        client.post_json(SCHEDULED_EVENTS_PATH, start_requests(plan['approved']), api_version)
    plan.update(incarnation=document['incarnation'], vm_name=vm_name, changed=bool(plan['approved']))
    return plan


def main():
    argument_spec = scheduled_events_argument_spec()
    argument_spec.update(
        event_ids=dict(type='list', elements='str', required=True),
        only_this_vm=dict(type='bool', default=True),
    )
    module = ImdsModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, lambda client: approve_events(client, module.params, module.check_mode))


if __name__ == '__main__':
    main()
