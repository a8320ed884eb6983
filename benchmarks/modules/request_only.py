# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Benchmark reference (case h): the IMDS request with http.client and nothing
# else (no checks, retries, detection, normalising or facts), the floor for any
# module built on http.client.
from __future__ import absolute_import, division, print_function
__metaclass__ = type

from http import client as http_client

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(endpoint=dict(type='str')), supports_check_mode=True)
    host, port = module.params['endpoint'][len('http://'):].rsplit(':', 1)
    connection = http_client.HTTPConnection(host, int(port), timeout=5)
    connection.request('GET', '/metadata/loadbalancer?api-version=2020-10-01', headers={'Metadata': 'true'})
    response = connection.getresponse()
    response.read()
    connection.close()
    module.exit_json(changed=False, status=response.status)


if __name__ == '__main__':
    main()
