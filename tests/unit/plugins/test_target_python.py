# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Code that runs on managed hosts must parse on the oldest target Python and import only the standard library."""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import ast
import os
import sys

import pytest

PLUGINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'plugins')
OLDEST_TARGET_PYTHON = (3, 8)
TARGET_SIDE = [os.path.join(root, name)
               for folder in ('modules', 'module_utils')
               for root, _dirs, files in os.walk(os.path.join(PLUGINS, folder))
               for name in sorted(files) if name.endswith('.py')]
ALLOWED_PREFIXES = ('ansible.module_utils', 'ansible_collections.imds.azure.plugins.module_utils', '__future__')


def test_target_side_files_are_found():
    names = sorted(os.path.basename(path) for path in TARGET_SIDE)
    assert {'loadbalancer_facts.py', 'metadata_info.py', '_imds.py', '_loadbalancer.py'} <= set(names)


@pytest.mark.parametrize('path', TARGET_SIDE, ids=os.path.basename)
def test_parses_with_the_oldest_target_grammar(path):
    with open(path) as handle:
        ast.parse(handle.read(), filename=path, feature_version=OLDEST_TARGET_PYTHON)


@pytest.mark.parametrize('path', TARGET_SIDE, ids=os.path.basename)
def test_imports_only_the_standard_library_and_module_utils(path):
    with open(path) as handle:
        tree = ast.parse(handle.read(), filename=path)
    stdlib = getattr(sys, 'stdlib_module_names', None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or '']
        else:
            continue
        for name in names:
            if name.startswith(ALLOWED_PREFIXES):
                continue
            top = name.split('.')[0]
            assert stdlib is None or top in stdlib, '%s imports %s, which is not in the standard library' % (path, name)
            assert top != 'ansible' or name.startswith('ansible.module_utils')
