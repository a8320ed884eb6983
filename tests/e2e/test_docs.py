# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# ansible-doc on the installed collection, as users read it: every module and
# filter of the checkout is listed and renders with its description,
# examples and return values, and the role shows its argument spec.

import json
import re
import subprocess

import pytest

from support.ansible_env import ansible_environment, tool_path
from support.paths import REPO_ROOT
DOC_TIMEOUT = 120.0


def plugin_names(directory, suffix):
    """FQCNs of the plugins in plugins/<directory>, from the checkout (so a new one cannot be missed)."""
    return sorted("imds.azure." + path.name[:-len(suffix)]
                  for path in (REPO_ROOT / "plugins" / directory).glob("*" + suffix)
                  if not path.name.startswith("_"))


MODULES = plugin_names("modules", ".py")
FILTERS = plugin_names("filter", ".yml")  # one documentation file per filter; the code shares one .py
ROLES = sorted("imds.azure." + path.parent.parent.name for path in REPO_ROOT.glob("roles/*/meta/argument_specs.yml"))


@pytest.fixture(scope="module")
def ansible_doc(collection_install, tmp_path_factory):
    env = ansible_environment(tmp_path_factory.mktemp("ansible-doc"), collection_install.path)

    def run(*args):
        done = subprocess.run([tool_path("ansible-doc")] + list(args), env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=DOC_TIMEOUT, check=False)
        assert done.returncode == 0, "ansible-doc %s failed:\n%s\n%s" % (" ".join(args), done.stdout, done.stderr)
        assert "WARNING" not in done.stderr and "ERROR" not in done.stderr, done.stderr
        return done.stdout

    return run


def test_the_checkout_has_plugins_to_check():
    assert "imds.azure.loadbalancer_facts" in MODULES and "imds.azure.nginx_listeners" in FILTERS
    assert ROLES == ["imds.azure.maintenance_drain", "imds.azure.nginx_frontends"]


@pytest.mark.parametrize("plugin_type, names", [("module", MODULES), ("filter", FILTERS)])
def test_every_plugin_is_listed(ansible_doc, plugin_type, names):
    listed = json.loads(ansible_doc("-t", plugin_type, "--list", "--json", "imds.azure"))
    assert sorted(listed) == names


@pytest.mark.parametrize("plugin_type, name", [("module", name) for name in MODULES] + [("filter", name) for name in FILTERS])
def test_every_plugin_renders_with_examples_and_return_values(ansible_doc, plugin_type, name):
    entry = json.loads(ansible_doc("-t", plugin_type, "--json", name))[name]
    doc = entry["doc"]
    assert doc["short_description"] and doc["description"]
    assert doc["author"] and doc["version_added"]
    for option_name, option in doc.get("options", {}).items():
        assert option.get("description"), "%s: option %s has no description" % (name, option_name)
    assert entry["examples"].strip()
    assert entry["return"], "%s documents no return values" % name
    for key, value in entry["return"].items():
        assert value.get("description") and value.get("type"), "%s: %s" % (name, key)
        # A filter returns one value (_value); a module says when each key is there.
        assert plugin_type == "filter" or value.get("returned"), "%s: %s" % (name, key)
    text = ansible_doc("-t", plugin_type, name)
    assert "EXAMPLES:" in text and "RETURN VALUES:" in text


@pytest.mark.parametrize("name", ROLES)
def test_every_role_shows_its_argument_spec(ansible_doc, name):
    entry = json.loads(ansible_doc("-t", "role", "--json", name))[name]
    main = entry["entry_points"]["main"]
    assert main["short_description"]
    assert main["options"]
    for option_name, option in main["options"].items():
        assert option.get("description"), "%s: option %s has no description" % (name, option_name)
    assert re.search(r"ENTRY POINT: \W*main\b", ansible_doc("-t", "role", name))
