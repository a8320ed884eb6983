# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Shared fixtures for the end-to-end tests: they build and install the
# collection as a user would, run the IMDS emulator (tools/imds_emulator.py)
# on loopback ports, and run ansible-playbook against them.
#
#   collection_install  (session) the built and installed collection
#   emulator            (factory) emulator("documented" | {...} | path) -> Emulator
#   emulator_fleet      (factory) emulator_fleet({"vm1": "documented", ...}) -> EmulatorFleet
#   run_playbook        (function) run_playbook(yaml_text_or_path, ...) -> PlaybookResult
#   nginx_binary, nginx_instance, lb_namespace, test_ca, ...  from support.nginx
#
# Everything listens on and talks to 127.0.0.1 only.

import pytest

# The support package's own checks report like a test's asserts.
pytest.register_assert_rewrite("support")

from support.ansible_env import tool_path  # noqa: E402 pylint: disable=wrong-import-position
from support.emulator import start_emulator, start_fleet  # noqa: E402 pylint: disable=wrong-import-position
from support.playbook import (  # noqa: E402 pylint: disable=wrong-import-position
    ANSIBLE_TIMEOUT, build_and_install, run_ansible_playbook,
)

# Fixtures that live with their helpers: nginx, namespaces and test CAs; the version matrix.
pytest_plugins = ["support.nginx", "support.matrix"]

# --------------------------------------------------------------------------- collection


@pytest.fixture(scope="session")
def collection_install(tmp_path_factory):
    """Build the collection from the checkout and install the tarball into a private collections path."""
    install, _outputs = build_and_install(tmp_path_factory.mktemp("collection"), tool_path("ansible-galaxy"))
    return install


# --------------------------------------------------------------------------- emulator


@pytest.fixture
def emulator(tmp_path_factory):
    """Factory: ``emulator(scenario="documented")`` starts an emulator on 127.0.0.1 and a free port.

    ``scenario`` is a bundled scenario name (tools/scenarios/NAME.json), a path
    to a scenario file, or a scenario dict. Every emulator started through the
    factory is stopped when the test ends.
    """
    started = []

    def start(scenario="documented"):
        emulator = start_emulator(tmp_path_factory.mktemp("emulator"), scenario)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator_fleet(tmp_path_factory):
    """Factory: ``emulator_fleet({"vm1": "documented", "vm2": {...}})`` starts one emulated VM per host.

    Returns an EmulatorFleet: ``.endpoints`` maps host name to base URL and
    ``fleet["vm1"]`` is that host's control client. Stopped when the test ends.
    """
    started = []

    def start(hosts):
        if not hosts:
            raise ValueError("emulator_fleet needs at least one host")
        fleet = start_fleet(tmp_path_factory.mktemp("emulator-fleet"), hosts)
        started.append(fleet)
        return fleet

    yield start
    for fleet in started:
        fleet.stop()


# --------------------------------------------------------------------------- ansible-playbook


@pytest.fixture
def run_playbook(collection_install, tmp_path_factory):
    """Run ansible-playbook with the installed collection and return a PlaybookResult.

    ``run_playbook(playbook, inventory=None, extra_vars=None, env=None, check=False, extra_args=())``

    - playbook: YAML text (written to a file in a fresh directory, so relative
      paths in it resolve there) or a path to a playbook file.
    - inventory: INI or YAML text, a dict (YAML inventory structure) or a path;
      default: localhost with ansible_connection=local.
    - extra_vars: dict passed as a JSON file with -e @file.
    - env: extra environment variables for ansible-playbook.
    - check: run with --check.
    - extra_args: more command-line arguments (avoid -v: it writes to stdout).
    """

    def run(playbook, inventory=None, extra_vars=None, env=None, check=False, extra_args=(), timeout=ANSIBLE_TIMEOUT):
        return run_ansible_playbook(tool_path("ansible-playbook"), collection_install.path,
                                    tmp_path_factory.mktemp("playbook"), playbook, inventory, extra_vars, env,
                                    (["--check"] if check else []) + list(extra_args), timeout)

    return run
