# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# How the end-to-end tests run ansible commands: tools from the project's
# virtual environment and an environment that no user setting leaks into.
# Shared by conftest.py and the helper modules next to it.

import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO_ROOT


# The directory of the running interpreter (the project's .venv/bin), not
# resolved through symlinks: ansible-playbook and ansible-galaxy live there.
TOOLS_BIN = Path(sys.executable).parent

# Modules run under Debian's own Python, as on a plain managed host, so one
# that leans on a package from the project's virtual environment fails here.
# (Interpreter discovery is not used: it can pick a version manager's shim
# that exists but refuses to run.) Inventory variables still override it.
MANAGED_HOST_PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


# Every Python version that ansible-core 2.19 (.venv's) accepts on managed hosts.
TARGET_PYTHON_VERSIONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13")
# Older host Pythons that only older ansible-core releases still run modules
# on (2.16: 3.6+, RHEL 8's platform-python; 2.17: 3.7+), each with the oldest
# matrix controller that accepts it.
OLD_TARGET_PYTHON_VERSIONS = {"3.6": "2.16", "3.7": "2.16"}

# The version matrix: tests/matrix/requirements-X.Y.txt pins one ansible-core
# release and names its controller Python; tools/setup.sh --matrix builds
# each into .cache/matrix/ansible-core-X.Y.
MATRIX_REQUIREMENTS = REPO_ROOT / "tests" / "matrix"
MATRIX_VENVS = REPO_ROOT / ".cache" / "matrix"


@dataclass(frozen=True)
class Controller:
    """One ansible-core release of the version matrix, in its own virtual environment."""

    release: str   # "2.16"
    python: str    # controller Python, "3.10"
    pinned: str    # the exact ansible-core version, "2.16.19"
    bin_dir: Path

    def tool(self, name):
        path = self.bin_dir / name
        if not path.exists():
            raise RuntimeError(f"{path} is missing: tools/setup.sh --matrix (which tools/test.sh runs) builds the "
                               f"ansible-core {self.release} environment")
        return str(path)


def matrix_controllers():
    """Every controller of the version matrix, oldest release first, as tests/matrix/ lists them."""
    controllers = []
    for requirements in MATRIX_REQUIREMENTS.glob("requirements-*.txt"):
        release = requirements.stem[len("requirements-"):]
        text = requirements.read_text(encoding="utf-8")
        python = re.search(r"^# controller-python: *([0-9.]+)", text, re.MULTILINE)
        pinned = re.search(r"^ansible-core==([0-9][^\s;]*)", text, re.MULTILINE)
        if python is None or pinned is None:
            raise RuntimeError(f"{requirements}: needs a '# controller-python: X.Y' line and an ansible-core== pin")
        controllers.append(Controller(release, python.group(1), pinned.group(1),
                                      MATRIX_VENVS / ("ansible-core-" + release) / "bin"))
    return sorted(controllers, key=lambda controller: tuple(int(part) for part in controller.release.split(".")))


def matrix_controller(release):
    """The matrix controller of one ansible-core release ("2.16")."""
    for controller in matrix_controllers():
        if controller.release == release:
            return controller
    raise RuntimeError(f"no tests/matrix/requirements-{release}.txt")


def link_json_callback_collection(collections_path):
    """Make ansible.posix (for its json callback) resolve from collections_path.

    Controllers of the version matrix have ansible-core alone; the collection
    comes from the ``ansible`` package in the project's virtual environment,
    linked rather than installed again for each release.
    """
    source = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections" / "ansible" / "posix"
    if not (source / "plugins" / "callback" / "json.py").is_file():
        raise RuntimeError(f"ansible.posix is missing from {source}: run tools/setup.sh")
    target = Path(collections_path) / "ansible_collections" / "ansible" / "posix"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(source, target_is_directory=True)
    return target


def _patch_release(interpreter):
    """The patch number of a pyenv interpreter path (.../versions/3.10.13/bin/python3.10 -> 13), -1 if not numeric."""
    release = os.path.basename(os.path.dirname(os.path.dirname(interpreter))).rsplit(".", 1)[-1]
    return int(release) if release.isdigit() else -1


def target_python(version):
    """Path of a Python ``version`` interpreter on this machine, or None.

    Looks for pythonX.Y in the usual system directories, then in pyenv's
    versions (never its shims, which may point elsewhere), and keeps the first
    that runs and reports that version.
    """
    name = "python" + version
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = ["/usr/bin/" + name, "/usr/local/bin/" + name]
    installed = glob.glob(os.path.join(pyenv_root, "versions", version + ".*", "bin", name))
    # Newest patch release first, compared as numbers: 3.10.13 before 3.10.9.
    candidates += sorted(installed, key=_patch_release, reverse=True)
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


def ansible_environment(workdir, collections_path, overrides=None, tools_bin=TOOLS_BIN):
    """Environment for an ansible command: no user or machine ansible settings leak in.

    The caller's ANSIBLE_* variables are dropped, configuration comes from an
    empty ansible.cfg, and every directory ansible writes to is under workdir.
    Collections resolve from collections_path, then from the collections that
    ship inside the ``ansible`` package (community.general, ansible.posix, ...)
    because ansible still scans its own site-packages. tools_bin (the
    project's virtual environment by default) comes first on PATH.
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
        PATH=os.pathsep.join([str(tools_bin), env.get("PATH", os.defpath)]),
    )
    env.update(overrides or {})
    return env
