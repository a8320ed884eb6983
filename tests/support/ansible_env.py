# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# How the end-to-end tests run ansible commands: tools from the project's
# virtual environment and an environment that no user setting leaks into.
# Shared by conftest.py and the helper modules next to it.

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The directory of the running interpreter (the project's .venv/bin), not
# resolved through symlinks: ansible-playbook and ansible-galaxy live there.
TOOLS_BIN = Path(sys.executable).parent

# Modules run under Debian's own Python, as on a plain managed host, so one
# that leans on a package from the project's virtual environment fails here.
# (Interpreter discovery is not used: it can pick a version manager's shim
# that exists but refuses to run.) Inventory variables still override it.
MANAGED_HOST_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


# Every Python version that ansible-core 2.19 accepts on managed hosts.
TARGET_PYTHON_VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")


def target_python(version):
    """Path of a Python ``version`` interpreter on this machine, or None.

    Looks for pythonX.Y in the usual system directories, then in pyenv's
    versions (never its shims, which may point elsewhere), and keeps the first
    that runs and reports that version.
    """
    name = "python" + version
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = ["/usr/bin/" + name, "/usr/local/bin/" + name]
    candidates += sorted(glob.glob(os.path.join(pyenv_root, "versions", version + ".*", "bin", name)), reverse=True)
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        try:
            done = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == version:
            return candidate
    return None


def tool_path(name):
    """Path of a command from the project's virtual environment, else from PATH."""
    candidate = TOOLS_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found next to {sys.executable} or on PATH; run tools/setup.sh")
    return found


def ansible_environment(workdir, collections_path, overrides=None):
    """Environment for an ansible command: no user or machine ansible settings leak in.

    The caller's ANSIBLE_* variables are dropped, configuration comes from an
    empty ansible.cfg, and every directory ansible writes to is under workdir.
    Collections resolve from collections_path, then from the collections that
    ship inside the ``ansible`` package (community.general, ansible.posix, ...)
    because ansible still scans its own site-packages.
    """
    workdir = Path(workdir)
    config = workdir / "ansible.cfg"
    if not config.exists():
        config.write_text("# empty: tests set everything through the environment\n", encoding="utf-8")
    env = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_HOME=str(workdir / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(workdir / "local-tmp"),
        ANSIBLE_REMOTE_TEMP=str(workdir / "remote-tmp"),
        ANSIBLE_COLLECTIONS_PATH=str(collections_path),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_PYTHON_INTERPRETER=MANAGED_HOST_PYTHON,
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        PATH=os.pathsep.join([str(TOOLS_BIN), env.get("PATH", os.defpath)]),
    )
    env.update(overrides or {})
    return env
