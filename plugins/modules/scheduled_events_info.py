#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: scheduled_events_info
short_description: Azure Scheduled Events of this VM (upcoming maintenance), normalised
version_added: 0.2.0
description:
  - Reads C(/metadata/scheduledevents) from the Azure Instance Metadata Service (IMDS) on the managed host and
    returns the maintenance Azure has scheduled (reboots, redeployments, freezes, Spot evictions, scale-set
    terminations), normalised, with the events that affect B(this) VM apart.
  - Events of an availability set or of a scale-set placement group reach every VM of the group. An event affects
    this VM when its C(Resources) name it; the name is read from IMDS unless I(vm_name) gives it.
  - An empty list of events is the usual state. An answer that cannot be trusted (a missing C(EventId), a
    C(NotBefore) that is not a date, no C(DocumentIncarnation)...) fails the task with C(error_code=invalid_metadata)
    and returns no events, so nothing is acted on by mistake.
  - The first request of a VM enables the service and can take about two minutes; the default I(timeout) allows for
    it (see the collection's guide).
  - A host that is not an Azure VM makes this module fail with C(error_code=not_azure).
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
    details: The module only reads IMDS.
  diff_mode:
    support: none
seealso:
  - module: imds.azure.scheduled_event_approve
  - name: Azure Metadata Service, Scheduled Events for Linux VMs
    description: Microsoft's description of the endpoint this module reads.
    link: https://learn.microsoft.com/azure/virtual-machines/linux/scheduled-events
'''

EXAMPLES = r'''
- name: Read the scheduled events of this VM
  imds.azure.scheduled_events_info:
  register: maintenance

- name: Show what Azure is about to do to this VM, and when
  ansible.builtin.debug:
    msg: "{{ item.type }} ({{ item.status }}) not before {{ item.not_before | default('now', true) }}"
  loop: "{{ maintenance.scheduled_events.for_this_vm }}"

- name: Read them from the bundled IMDS emulator, naming the VM instead of asking IMDS
  imds.azure.scheduled_events_info:
    endpoint: http://127.0.0.1:8080
    vm_name: vm-web-01
    timeout: 10
  register: maintenance
'''

RETURN = r'''
scheduled_events:
  description: The scheduled events document, normalised.
  returned: success
  type: dict
  contains:
    incarnation:
      description: C(DocumentIncarnation); Azure adds 1 to it whenever an event appears, starts or ends.
      returned: always
      type: int
      sample: 2
    vm_name:
      description: The VM name the events were matched against (I(vm_name), or the name IMDS gave).
      returned: always
      type: str
      sample: vm-web-01
    events:
      description: Every event in the document, in its order, this VM's or not.
      returned: always
      type: list
      elements: dict
      contains: &event
        id:
          description: C(EventId), the id to approve the event with.
          type: str
          sample: f020ba2e-3bc0-4c40-a10b-86575a9eabd5
        type:
          description:
            - C(Freeze), C(Reboot), C(Redeploy), C(Preempt) or C(Terminate), in Azure's spelling whatever the answer's
              letter case. A type Azure adds later is returned as written.
          type: str
          sample: Reboot
        status:
          description: C(Scheduled) (waiting for C(not_before) or an approval) or C(Started).
          type: str
          sample: Scheduled
        resource_type:
          description: C(ResourceType), C(VirtualMachine).
          type: str
          sample: VirtualMachine
        resources:
          description: The VMs the event affects, as Azure names them.
          type: list
          elements: str
          sample: ["vm-web-01"]
        source:
          description: C(Platform) or C(User) (who caused it); empty when the answer has none (older api-versions).
          type: str
          sample: Platform
        description:
          description: What Azure says about the event; empty when it says nothing (or with older api-versions).
          type: str
          sample: Host server is undergoing maintenance.
        duration_seconds:
          description: How long the impact is expected to last, in seconds; null when Azure does not know (C(-1)).
          type: int
          sample: 9
        not_before:
          description:
            - The time after which the event may start, in ISO 8601 UTC (C(YYYY-MM-DDTHH:MM:SSZ)).
            - Null when Azure sends none (an empty C(NotBefore), usual once the event has started).
          type: str
          sample: '2021-07-22T04:50:17Z'
        not_before_epoch:
          description: The same time in seconds since 1970-01-01 UTC, or null.
          type: int
          sample: 1626929417
    for_this_vm:
      description: The events whose C(resources) name I(vm_name) (compared without regard to case), same keys.
      returned: always
      type: list
      elements: dict
      contains: *event
error_code:
  description:
    - What went wrong, as one word, to test in C(failed_when) or C(until).
    - For example C(invalid_metadata) (the answer could not be trusted), C(timeout), C(throttled), C(not_azure).
    - C(docs/troubleshooting.md) in the collection explains every code and what to do about it.
  returned: failure
  type: str
  sample: timeout
status:
  description: The HTTP status of the IMDS answer the module failed on; null when there was no answer.
  returned: failure
  type: int
  sample: 503
imds_requests:
  description:
    - How many requests the module sent to IMDS, retries included (a connection attempt counts as one).
    - C(1) for the events, one more when the VM name is read from IMDS.
  returned: always
  type: int
  sample: 2
imds_seconds:
  description: Seconds the module spent on IMDS, waits between retries included.
  returned: always
  type: float
  sample: 0.012
'''

from ansible_collections.imds.azure.plugins.module_utils._imds_module import ImdsModule, run_module
from ansible_collections.imds.azure.plugins.module_utils._scheduled_events import (
    events_for_vm,
    read_scheduled_events,
    read_vm_name,
    scheduled_events_argument_spec,
)


def main():
    module = ImdsModule(argument_spec=scheduled_events_argument_spec(), supports_check_mode=True)

    def read(client):
        document = read_scheduled_events(client, module.params['api_version'])
        vm_name = read_vm_name(client, module.params['vm_name'])
        document.update(for_this_vm=events_for_vm(document['events'], vm_name), vm_name=vm_name)
        return {'scheduled_events': document}

    run_module(module, read)


if __name__ == '__main__':
    main()
