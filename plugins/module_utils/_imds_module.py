# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The AnsibleModule glue every module shares: every way a run ends carries error_code and the cost of the read."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.imds.azure.plugins.module_utils._imds import client_from_params, failures

NOTHING_READ = {'imds_requests': 0, 'imds_seconds': 0.0}


class ImdsModule(AnsibleModule):
    """An AnsibleModule whose own failures (an option of the wrong type, an unknown option) have an error_code too.

    AnsibleModule checks the arguments before the module's code runs and fails
    with only a message; ``until: result.error_code ...`` would then fail on
    an undefined value instead of deciding.
    """

    def fail_json(self, msg, **kwargs):
        kwargs.setdefault('error_code', 'invalid_option')
        for key, value in NOTHING_READ.items():
            kwargs.setdefault(key, value)
        super(ImdsModule, self).fail_json(msg=msg, **kwargs)


def run_module(module, read):
    """Exit the module with ``read(client)``'s result keys and the cost of the read, or fail it cleanly.

    ``changed`` is false unless ``read`` returns it (a module that acts, such
    as approving scheduled events). Every exception, not only ImdsError, ends
    in fail_json with an error_code: a module that crashes would tell the
    user nothing they can act on.
    """
    client = None
    try:
        client = client_from_params(module.params)
        result = read(client)
    except Exception as exc:  # pylint: disable=broad-except
        failures().fail_module(module, exc, client)
    result.update(client.usage())
    result.setdefault('changed', False)
    module.exit_json(**result)
