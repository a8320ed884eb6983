# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running ansible commands as the e2e tests do: the installed collection, playbook results, their inputs."""

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .ansible_env import TOOLS_BIN, ansible_environment
from .paths import REPO_ROOT

ANSIBLE_TIMEOUT = 600.0
GALAXY_TIMEOUT = 180.0

DEFAULT_INVENTORY = "[all]\nlocalhost ansible_connection=local\n"


def run_command(command, env, cwd, timeout, what):
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


@dataclass
class CollectionInstall:
    """The collection as built and installed by ansible-galaxy."""

    path: Path             # use as ANSIBLE_COLLECTIONS_PATH
    collection_dir: Path   # path/ansible_collections/imds/azure
    tarball: Path
    version: str


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
        self.report = parse_json_report(stdout)
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


def parse_json_report(stdout):
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


def write_input(workdir, name, content, suffix):
    """Text becomes a file in workdir; an existing path is used as it is."""
    if isinstance(content, Path):
        return str(content.resolve())
    if "\n" not in content and Path(content).is_file():
        return str(Path(content).resolve())
    path = Path(workdir) / (name + suffix)
    path.write_text(content, encoding="utf-8")
    return str(path)


def inventory_file(workdir, inventory):
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
        return write_input(workdir, "inventory", inventory, ".yml" if isinstance(parsed, dict) else ".ini")
    return write_input(workdir, "inventory", inventory, ".ini")


def build_and_install(workdir, galaxy, tools_bin=TOOLS_BIN, what="the collection"):
    """Build the checkout with ``galaxy`` (ansible-galaxy) and install the tarball into workdir/collections.

    Returns the CollectionInstall and the two commands' results (build, install);
    a failed build or install fails the test, naming ``what``.
    """
    workdir = Path(workdir)
    dist, collections_path = workdir / "dist", workdir / "collections"
    dist.mkdir()
    collections_path.mkdir()
    env = ansible_environment(workdir, collections_path, tools_bin=tools_bin)
    built = run_command([galaxy, "collection", "build", str(REPO_ROOT), "--output-path", str(dist)],
                        env, workdir, GALAXY_TIMEOUT, "ansible-galaxy collection build")
    tarballs = sorted(dist.glob("imds-azure-*.tar.gz"))
    if built.returncode != 0 or len(tarballs) != 1:
        raise AssertionError(f"{what}: building the collection failed (exit {built.returncode}):\n"
                             f"{built.stdout}\n{built.stderr}")
    installed = run_command([galaxy, "collection", "install", "--offline", "--force", "-p", str(collections_path),
                             str(tarballs[0])], env, workdir, GALAXY_TIMEOUT, "ansible-galaxy collection install")
    collection_dir = collections_path / "ansible_collections" / "imds" / "azure"
    manifest = collection_dir / "MANIFEST.json"
    if installed.returncode != 0 or not manifest.is_file():
        raise AssertionError(f"{what}: installing the collection failed (exit {installed.returncode}):\n"
                             f"{installed.stdout}\n{installed.stderr}")
    version = json.loads(manifest.read_text(encoding="utf-8"))["collection_info"]["version"]
    install = CollectionInstall(path=collections_path, collection_dir=collection_dir, tarball=tarballs[0], version=version)
    return install, (built, installed)


def run_ansible_playbook(playbook_bin, collections_path, workdir, playbook, inventory=None, extra_vars=None,
                         env=None, extra_args=(), timeout=ANSIBLE_TIMEOUT, tools_bin=TOOLS_BIN, what="ansible-playbook"):
    """Run ``playbook_bin`` (an ansible-playbook) in ``workdir`` with the collections of ``collections_path``.

    playbook and inventory as write_input and inventory_file take them;
    extra_vars go in a JSON file given with -e @file, env adds to the
    environment; the run reports through the ansible.posix.json callback.
    """
    workdir = Path(workdir)
    command = [playbook_bin, "-i", inventory_file(workdir, inventory)]
    if extra_vars:
        vars_file = workdir / "extra_vars.json"
        vars_file.write_text(json.dumps(extra_vars), encoding="utf-8")
        command += ["-e", "@" + str(vars_file)]
    command += list(extra_args)
    command.append(write_input(workdir, "playbook", playbook, ".yml"))
    environment = ansible_environment(workdir, collections_path, {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
                                      tools_bin=tools_bin)
    environment.update(env or {})
    completed = run_command(command, environment, workdir, timeout, what)
    return PlaybookResult(command, completed.returncode, completed.stdout, completed.stderr)
