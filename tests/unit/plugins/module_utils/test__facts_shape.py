# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function
__metaclass__ = type

from ansible_collections.imds.azure.plugins.module_utils._facts_shape import (
    FACTS_DICT_KEYS,
    FACTS_LIST_KEYS,
    unavailable_facts,
)
from ansible_collections.imds.azure.plugins.module_utils._loadbalancer import normalize_loadbalancer
from ansible_collections.imds.azure.tests.unit.utils.imds_server import load_fixture

API = '2020-10-01'


def test_unavailable_facts_have_every_key_with_nothing_in_it():
    facts = unavailable_facts('no_loadbalancer', 'No load balancer metadata.', API)
    available = normalize_loadbalancer(load_fixture('lb_200_documented')['body'], API)
    assert set(facts) == set(available) | {'reason', 'message'}
    assert facts['available'] is False
    assert all(not facts[key] for key in FACTS_LIST_KEYS + FACTS_DICT_KEYS)
