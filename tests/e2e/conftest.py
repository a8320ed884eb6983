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

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

# The support package's own checks report like a test's asserts.
pytest.register_assert_rewrite("support")

from support.ansible_env import ansible_environment, tool_path  # noqa: E402 pylint: disable=wrong-import-position
from support.emulator import start_emulator, start_fleet  # noqa: E402 pylint: disable=wrong-import-position
from support.paths import REPO_ROOT  # noqa: E402 pylint: disable=wrong-import-position

# The nginx, namespace and test CA fixtures live with their helpers.
pytest_plugins = ["support.nginx"]

ANSIBLE_TIMEOUT = 600.0
GALAXY_TIMEOUT = 180.0

DEFAULT_INVENTORY = "[all]\nlocalhost ansible_connection=local\n"


def _run(command, env, cwd, timeout, what):
    """Run a command to completion; a hang becomes a clear test failure."""
    try:
        return subprocess.run(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
            text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{what} did not finish within {timeout:.0f}s: {' '.join(map(str, command))}\n"
            f"stdout:\n{exc.stdout or ''}\nstderr:\n{exc.stderr or ''}"
        ) from None


# --------------------------------------------------------------------------- collection


@dataclass
class CollectionInstall:
    """The collection as built and installed by ansible-galaxy."""

    path: Path             # use as ANSIBLE_COLLECTIONS_PATH
    collection_dir: Path   # path/ansible_collections/imds/azure
    tarball: Path
    version: str


@pytest.fixture(scope="session")
def collection_install(tmp_path_factory):
    """Build the collection from the checkout and install the tarball into a private collections path."""
    workdir = tmp_path_factory.mktemp("collection")
    dist = workdir / "dist"
    collections_path = workdir / "collections"
    dist.mkdir()
    collections_path.mkdir()
    env = ansible_environment(workdir, collections_path)
    galaxy = tool_path("ansible-galaxy")

    built = _run([galaxy, "collection", "build", str(REPO_ROOT), "--output-path", str(dist)],
                 env, workdir, GALAXY_TIMEOUT, "ansible-galaxy collection build")
    tarballs = sorted(dist.glob("imds-azure-*.tar.gz"))
    if built.returncode != 0 or len(tarballs) != 1:
        raise AssertionError(f"building the collection failed (exit {built.returncode}):\n{built.stdout}\n{built.stderr}")

    installed = _run([galaxy, "collection", "install", "--offline", "--force", "-p", str(collections_path), str(tarballs[0])],
                     env, workdir, GALAXY_TIMEOUT, "ansible-galaxy collection install")
    collection_dir = collections_path / "ansible_collections" / "imds" / "azure"
    manifest = collection_dir / "MANIFEST.json"
    if installed.returncode != 0 or not manifest.is_file():
        raise AssertionError(f"installing the collection failed (exit {installed.returncode}):\n{installed.stdout}\n{installed.stderr}")

    version = json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"]
    return CollectionInstall(path=collections_path, collection_dir=collection_dir, tarball=tarballs[0], version=version)


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


@dataclass
class TaskResult:
    """One host's result of one task, as the ansible.posix.json callback reports it."""

    play: str
    task: str
    host: str
    result: dict = field(repr=False)


class PlaybookResult:
    """Outcome of one ansible-playbook run.

    ``rc``, ``stdout``, ``stderr``: the process' own. ``report``: the parsed
    JSON report (None when ansible-playbook stopped before printing one, e.g.
    on a syntax error). ``task(name, host)`` returns that host's result dict.
    """

    def __init__(self, command, rc, stdout, stderr):
        self.command = command
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.report = _parse_json_report(stdout)
        self.results = []
        for play in (self.report or {}).get("plays", []):
            play_name = play.get("play", {}).get("name", "")
            for task in play.get("tasks", []):
                task_name = task.get("task", {}).get("name", "")
                for host, result in task.get("hosts", {}).items():
                    self.results.append(TaskResult(play_name, task_name, host, result))

    def __str__(self):
        return self.describe()

    def describe(self):
        """A summary for assertion messages: command, exit code, failed tasks and stderr."""
        lines = [f"ansible-playbook exited {self.rc}: {' '.join(self.command)}"]
        for entry in self.results:
            if entry.result.get("failed") or entry.result.get("unreachable"):
                message = entry.result.get("msg", "")
                lines.append(f"  FAILED {entry.host} | {entry.task}: {message}")
        if self.report is None:
            lines.append("no JSON report; stdout:\n" + self.stdout[-4000:])
        if self.stderr.strip():
            lines.append("stderr:\n" + self.stderr[-4000:])
        return "\n".join(lines)

    @property
    def stats(self):
        """Per-host counters: {"localhost": {"ok": 3, "changed": 0, "failures": 0, ...}}."""
        return (self.report or {}).get("stats", {})

    def task_names(self, host=None):
        """Names of the tasks that ran (on host, if given), in order."""
        return [entry.task for entry in self.results if host is None or entry.host == host]

    def task_results(self, name, host="localhost"):
        """Every result of the tasks called name on host, in order (a role's task may be named bare or "role : name")."""
        return [
            entry.result for entry in self.results
            if entry.host == host and (entry.task == name or entry.task.endswith(" : " + name))
        ]

    def task(self, name, host="localhost", occurrence=None):
        """The result dict of task name on host; occurrence picks one when the name ran more than once."""
        matches = self.task_results(name, host)
        if not matches:
            raise AssertionError(f"no result for task {name!r} on {host}; tasks that ran there: {self.task_names(host)}\n{self.describe()}")
        if occurrence is None:
            if len(matches) > 1:
                raise AssertionError(f"task {name!r} ran {len(matches)} times on {host}; pass occurrence=")
            return matches[0]
        return matches[occurrence]

    def assert_ok(self):
        """Fail the test, with the details, unless ansible-playbook exited 0."""
        assert self.rc == 0, self.describe()
        return self


def _parse_json_report(stdout):
    """The JSON document the callback printed; tolerant of lines printed before it."""
    text = stdout.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    decoder = json.JSONDecoder()
    position = 0
    for line in stdout.splitlines(keepends=True):
        if line.startswith("{"):
            try:
                return decoder.raw_decode(stdout, position)[0]
            except ValueError:
                pass
        position += len(line)
    return None


def _write_input(workdir, name, content, suffix):
    """Text becomes a file in workdir; an existing path is used as it is."""
    if isinstance(content, Path):
        return str(content.resolve())
    if "\n" not in content and Path(content).is_file():
        return str(Path(content).resolve())
    path = Path(workdir) / (name + suffix)
    path.write_text(content, encoding="utf-8")
    return str(path)


def _inventory_file(workdir, inventory):
    if inventory is None:
        inventory = DEFAULT_INVENTORY
    if isinstance(inventory, dict):
        path = Path(workdir) / "inventory.yml"
        path.write_text(yaml.safe_dump(inventory, default_flow_style=False), encoding="utf-8")
        return str(path)
    if isinstance(inventory, str) and "\n" in inventory:
        # YAML inventories need a .yml name to be read as YAML; anything else is INI.
        try:
            parsed = yaml.safe_load(inventory)
        except yaml.YAMLError:
            parsed = None
        return _write_input(workdir, "inventory", inventory, ".yml" if isinstance(parsed, dict) else ".ini")
    return _write_input(workdir, "inventory", inventory, ".ini")


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
        workdir = tmp_path_factory.mktemp("playbook")
        command = [tool_path("ansible-playbook"), "-i", _inventory_file(workdir, inventory)]
        if extra_vars:
            vars_file = workdir / "extra_vars.json"
            vars_file.write_text(json.dumps(extra_vars), encoding="utf-8")
            command += ["-e", "@" + str(vars_file)]
        if check:
            command.append("--check")
        command += list(extra_args)
        command.append(_write_input(workdir, "playbook", playbook, ".yml"))

        environment = ansible_environment(workdir, collection_install.path, {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"})
        environment.update(env or {})
        completed = _run(command, environment, workdir, timeout, "ansible-playbook")
        return PlaybookResult(command, completed.returncode, completed.stdout, completed.stderr)

    return run
