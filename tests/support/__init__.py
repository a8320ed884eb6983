# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test support shared by tests/emulator, tests/e2e and benchmarks/.

pytest finds it through ``pythonpath`` in pytest.ini (which also puts tools/
on the path, for ``import imds_emulator``). Modules, by topic:

    paths         repository locations and the IMDS paths, defined once
    ansible_env   the environment ansible commands run in, tool lookup, host Pythons
    playbook      the installed collection, playbook results, running commands
    matrix        the version matrix: each release's collection install and ansible-playbook
    collection    this checkout importable by name, for the benchmarks
    emulator      the one launcher of tools/imds_emulator.py and its control client
    emulator_http raw HTTP requests to an emulator, as a module sees them
    faults        fault scenarios, fake servers and the role/module playbooks of the fault tests
    fleet         fleet scenarios, fact caches (jsonfile, Redis server)
    nginx         a real nginx, test CAs and HTTPS clients
    recipes       the fenced blocks of README.md and docs/*.md
"""
