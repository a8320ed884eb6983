# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One list of error codes: every code the modules can fail with is declared, produced and documented."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os
import re

from ansible_collections.imds.azure.plugins.module_utils import _imds
from ansible_collections.imds.azure.plugins.module_utils._imds_failures import ERROR_CODES, STATUS_ADVICE

COLLECTION = os.path.abspath(os.path.join(os.path.dirname(_imds.__file__), os.pardir, os.pardir))
SOURCES = [os.path.join(COLLECTION, 'plugins', directory, name)
           for directory in ('module_utils', 'modules')
           for name in sorted(os.listdir(os.path.join(COLLECTION, 'plugins', directory))) if name.endswith('.py')]
TROUBLESHOOTING = os.path.join(COLLECTION, 'docs', 'troubleshooting.md')


def produced_codes():
    """Codes the code base can raise: code='...' arguments, code = '...' class attributes, 'http_%d'."""
    codes = set()
    for path in SOURCES:
        with open(path) as handle:
            tree = ast.parse(handle.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg == 'code' and isinstance(node.value, ast.Constant):
                codes.add(node.value.value)
            if isinstance(node, ast.Assign) and [getattr(t, 'id', None) for t in node.targets] == ['code'] \
                    and isinstance(node.value, ast.Constant):
                codes.add(node.value.value)
            if isinstance(node, ast.Constant) and node.value == 'http_%d':
                codes.add('http_<status>')
    codes.update(code for code, _advice in STATUS_ADVICE.values())
    codes.discard('error')  # ImdsError's default, never used by a failure
    return codes


def documented_codes():
    """The codes in the error_code column of the tables of docs/troubleshooting.md."""
    codes = set()
    with open(TROUBLESHOOTING) as handle:
        for line in handle:
            cells = [cell.strip() for cell in line.strip().strip('|').split('|')]
            if line.startswith('|') and len(cells) > 2 and not set(cells[0]) <= set('-'):
                codes.update(re.findall(r'`([a-z_<>0-9]+)`', cells[1]))
    return codes - {'error_code', 'metadata_info', 'loadbalancer_facts'}


def test_every_code_the_modules_produce_is_declared_with_a_meaning():
    assert produced_codes() == set(ERROR_CODES)
    assert all(meaning.endswith('.') and len(meaning) < 160 for meaning in ERROR_CODES.values())


def test_troubleshooting_explains_exactly_the_declared_codes():
    assert documented_codes() == set(ERROR_CODES)
