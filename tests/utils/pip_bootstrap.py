# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Offline stand-in for the pip bootstrap script that ansible-test downloads.
#
# ansible-test creates its sanity-test virtual environments without pip, then
# runs ``~/.ansible/test/cache/get_pip_<pip version>.py`` (a copy of get-pip.py)
# to install pip into them. When that file is missing it downloads it from a
# host outside the package index, which machines that only reach the package
# index cannot do. tools/setup.sh copies this script to that path.
#
# Called the way ansible-test calls get-pip.py::
#
#     python get_pip_24_2.py --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel
#
# it installs pip from the wheel bundled with the interpreter (``ensurepip``),
# then has that pip install the requested packages (the exact pip release
# ansible-test asks for, and anything else named) from the configured package
# index. ``--no-setuptools`` and ``--no-wheel`` are get-pip.py's own flags, not
# pip's: they are taken out of the pip command line and honoured by removing
# setuptools or wheel if ensurepip brought them in.

import importlib.util
import subprocess
import sys

# get-pip.py flag -> distribution it keeps out of the environment
GET_PIP_ONLY_FLAGS = {
    '--no-setuptools': 'setuptools',
    '--no-wheel': 'wheel',
}


def run(command):
    """Run a command, exiting with its status when it fails."""
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        sys.stderr.write('pip bootstrap: command failed (exit %d): %s\n' % (completed.returncode, ' '.join(command)))
        sys.exit(completed.returncode)


def is_installed(distribution):
    """Tell whether a distribution is installed for this interpreter (checked in a fresh process)."""
    probe = 'import importlib.metadata as m, sys\ntry:\n    m.version(sys.argv[1])\nexcept m.PackageNotFoundError:\n    sys.exit(1)\n'
    return subprocess.run([sys.executable, '-c', probe, distribution], check=False).returncode == 0


def split_arguments(arguments):
    """Split get-pip.py arguments into pip install arguments and distributions to keep out."""
    pip_arguments = [argument for argument in arguments if argument not in GET_PIP_ONLY_FLAGS]
    excluded = [GET_PIP_ONLY_FLAGS[argument] for argument in arguments if argument in GET_PIP_ONLY_FLAGS]
    return pip_arguments, excluded


def main(arguments):
    """Install pip with ensurepip, then the requested packages with that pip."""
    pip_arguments, excluded = split_arguments(arguments)
    present_before = {name for name in excluded if is_installed(name)}

    if importlib.util.find_spec('ensurepip') is None:
        sys.stderr.write('pip bootstrap: this Python has no ensurepip module (on Debian: apt-get install python3-venv)\n')
        sys.exit(1)

    run([sys.executable, '-m', 'ensurepip', '--default-pip'])

    if any(not argument.startswith('-') for argument in pip_arguments):
        run([sys.executable, '-m', 'pip', 'install'] + pip_arguments)

    for name in excluded:
        if name not in present_before and is_installed(name):
            run([sys.executable, '-m', 'pip', 'uninstall', '--yes', '--disable-pip-version-check', name])


if __name__ == '__main__':
    main(sys.argv[1:])
