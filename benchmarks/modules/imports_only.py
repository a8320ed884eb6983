# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Benchmark diagnostic (case x2): imports what loadbalancer_facts imports from
# the collection's module_utils, then returns nothing.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.imds.azure.plugins.module_utils._imds import client_from_params  # noqa: F401 pylint: disable=unused-import
from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import normalize_loadbalancer  # noqa: F401 pylint: disable=unused-import


def main():
    module = AnsibleModule(argument_spec=dict(endpoint=dict(type='str')), supports_check_mode=True)
    module.exit_json(changed=False)


if __name__ == '__main__':
    main()
