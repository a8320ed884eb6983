# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Run a module's main() in-process and capture what it would print."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import json
from unittest import mock

from ansible.module_utils import basic


class ModuleExit(Exception):
    """Raised instead of exit_json / fail_json, carrying the result."""

    def __init__(self, failed, result):
        super(ModuleExit, self).__init__(result)
        self.failed = failed
        self.result = result


def _exit_json(_module, **result):
    raise ModuleExit(False, result)


def _fail_json(_module, **result):
    raise ModuleExit(True, result)


def run_module(main, args, check_mode=False):
    """Return (failed, result) of one module run with the given arguments."""
    args = dict(args)
    if check_mode:
        args['_ansible_check_mode'] = True
    try:
        from ansible.module_utils.testing import patch_module_args
        patcher = patch_module_args(args)
    except ImportError:  # ansible-core before 2.19
        patcher = mock.patch.object(basic, '_ANSIBLE_ARGS', json.dumps({'ANSIBLE_MODULE_ARGS': args}).encode())
    with patcher, mock.patch.object(basic.AnsibleModule, 'exit_json', _exit_json), \
            mock.patch.object(basic.AnsibleModule, 'fail_json', _fail_json):
        try:
            main()
        except ModuleExit as outcome:
            return outcome.failed, outcome.result
    raise AssertionError('the module returned without calling exit_json or fail_json')


def run_against(server, main, check_mode=False, **args):
    """run_module() of ``main`` pointed at a scripted IMDS ``server``, with no retries unless the test asks."""
    args.setdefault('endpoint', server.endpoint)
    args.setdefault('retry_timeout', 0)
    return run_module(main, args, check_mode=check_mode)
