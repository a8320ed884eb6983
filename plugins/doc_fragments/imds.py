# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type


class ModuleDocFragment(object):

    # Options every module of the collection shares, with the client behind them.
    DOCUMENTATION = r'''
options:
  endpoint:
    description:
      - Base URL of the Instance Metadata Service, C(http://host[:port]).
      - When not set, C(http://169.254.169.254) is used, and the module first reads the DMI chassis asset tag
        (C(/sys/class/dmi/id/chassis_asset_tag)). When DMI says the host is not an Azure VM, or that address is
        unreachable, the module answers "not an Azure VM" without waiting.
      - When set, no detection is done and every failure to reach it is an error. Only point it at a service you
        trust, such as the bundled IMDS emulator, because whatever answers there becomes facts and configuration.
      - Requests never go through a proxy, whatever C(http_proxy), C(https_proxy), C(all_proxy) or C(no_proxy) say,
        and redirects are never followed.
    type: str
  timeout:
    description:
      - Seconds allowed for one request (one attempt), from resolving the endpoint's host name and connecting
        (to each of its addresses in turn) to the last byte of the answer.
      - A request that takes longer fails; it is not retried.
      - More than 0 and at most 300. Other values (also C(nan) and C(inf)) fail with C(error_code=invalid_option).
    type: float
    default: 5
  retry_timeout:
    description:
      - Total seconds spent retrying transient IMDS errors (HTTP 410, 429, 500, 503, the transient 404 answers of
        the load balancer endpoint, and reset connections) with exponential backoff and jitter.
      - The default follows Azure's advice to retry for up to 70 seconds. C(0) disables retries.
      - Whatever the setting, one module run sends at most 5 requests per second, the IMDS limit per VM.
      - When IMDS asks with C(Retry-After) for a longer wait than the budget has left, the module fails at once
        instead of waiting.
      - From 0 to 3600. Other values (also C(nan) and C(inf)) fail with C(error_code=invalid_option).
    type: float
    default: 70
notes:
  - The modules need no Python packages beyond the standard library on the managed host.
  - IMDS is only reachable from inside the VM, so these modules run on the managed host, not on the controller.
  - All modules of this collection are in the action group C(imds.azure.imds), so
    C(module_defaults) with C(group/imds.azure.imds) sets their options at once.
'''

    ATTRIBUTES = r'''
attributes:
  action_group:
    description: Use C(group/imds.azure.imds) in C(module_defaults) to set options for all modules of this collection.
    support: full
    membership:
      - imds.azure.imds
  platform:
    description: Target operating systems.
    support: full
    platforms: posix
'''

    # The options both scheduled events modules add, and the longer timeout they need.
    SCHEDULED_EVENTS = r'''
options:
  api_version:
    description:
      - IMDS C(api-version) to ask for, C(YYYY-MM-DD).
      - Azure documents C(2017-11-01), C(2019-01-01), C(2019-08-01) and C(2020-07-01) for scheduled events.
        Older versions leave out some keys (C(DurationInSeconds), C(EventSource), C(Description), depending on the
        version), which are then returned as null or empty.
    type: str
    default: '2020-07-01'
  timeout:
    description:
      - Seconds allowed for one request (one attempt), from connecting to the last byte of the answer.
      - The first scheduled events request a VM makes enables the service, and Azure's answer to it can take
        about two minutes; the default of 150 seconds lets that first call succeed. Later calls answer in
        milliseconds.
      - A request that takes longer fails with C(error_code=timeout); it is not retried.
      - More than 0 and at most 300. Other values (also C(nan) and C(inf)) fail with C(error_code=invalid_option).
    type: float
    default: 150
  vm_name:
    description:
      - The name this VM has in Azure, which the C(Resources) of an event are compared with (without regard to
        case) to tell which events affect this VM.
      - Events of an availability set or of a scale-set placement group reach every VM of the group, naming only the
        VMs they affect.
      - When not set or empty, it is read from IMDS (C(/metadata/instance/compute/name)), one more request.
    type: str
'''
