# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Benchmark diagnostic (case x1): the facts of one host, static, without
# importing the collection or asking IMDS. benchmarks/run.py fills in FACTS
# when it copies this module into its diagnostic collection.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

FACTS = {}


def main():
    module = AnsibleModule(argument_spec=dict(endpoint=dict(type='str')), supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts={'azure_loadbalancer': FACTS})


if __name__ == '__main__':
    main()
