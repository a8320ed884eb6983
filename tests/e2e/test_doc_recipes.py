# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every recipe in README.md and docs/*.md runs as written.

The convention, for the fenced blocks of those files:

- A shell block (```sh) is preceded, on the line just before its fence, by
  ``<!-- recipe: NAME -->`` (NAME unique in its file: letters, digits,
  dashes) when it runs off Azure from the repository root after
  ``./tools/setup.sh``, or by ``<!-- not-run: reason -->`` when it cannot
  run here (a real Azure VM, systemd, ...). A shell block with neither fails.
  Shell commands go in ```sh blocks only: ```bash, ```shell and ```console
  blocks fail too (output samples go in ```text blocks).
- A ```python block may be a recipe as well (it runs with ``python3``).
- ``<!-- file: PATH -->`` before any block says that the block shows the file
  PATH of the repository, or a part of it: its lines, comment lines and blank
  lines aside, must appear in the file in one piece, so a doc that shows an
  example file cannot drift from it.

What is checked:

- Recipes run exactly as written, with bash (``bash -e -o pipefail``, so a
  command that fails in the middle of a recipe fails it, as a user would see
  its error), each with a timeout. The blocks of one file run in document
  order in the same copy of the repository and the same HOME, so a later
  recipe can use what an earlier one made (an installed collection, a filled
  fact cache); every file starts from a fresh copy and a fresh HOME.
- The copy holds the files git tracks or would track (a clean clone, with the
  working tree's changes), and its ``.venv`` links to the checkout's, which
  ``./tools/setup.sh`` made: that is "after setup". ``.venv/bin`` comes first
  on PATH, ANSIBLE_* variables of the caller are dropped, HOME is an empty
  directory. Recipes may write anywhere in the copy; the checkout is never
  touched.
- Each recipe runs in a network namespace of its own with only a loopback
  interface: a recipe reaches nothing but the services it starts itself
  (the IMDS emulator, redis-server), never 169.254.169.254 nor any other
  address. A recipe starts the services it needs as a user would and stops
  them before it ends: a process still running in the namespace when the
  recipe is done fails it (and is killed).
- Playbooks the docs tell a user to run are files under examples/, which the
  docs show with ``<!-- file: ... -->`` and recipes run. Every other ```yaml
  block must parse, and each one that is a whole playbook (plays with
  ``hosts``) passes ``ansible-playbook --syntax-check`` against the
  installed collection (module names included). ```python blocks that are
  not recipes must compile.
"""


import ast
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from support.ansible_env import TOOLS_BIN, ansible_environment, tool_path
from support.paths import REPO_ROOT
from support.recipes import Block, parse_blocks
DOCUMENTS = [REPO_ROOT / "README.md"] + sorted((REPO_ROOT / "docs").glob("*.md"))

RECIPE_TIMEOUT = 420.0
STOP_TIMEOUT = 10.0
STOP_GRACE = 5.0
OUTPUT_TAIL = 12000

RECIPE_NAME = re.compile(r"^[A-Za-z0-9-]+$")
MARKER_KINDS = ("recipe", "not-run", "file")
SHELL_LANGS = ("bash", "shell", "console", "zsh", "shell-session", "shellsession")
RECIPE_LANGS = {"sh": ["bash", "-e", "-o", "pipefail"], "python": ["python3"]}

_NAMESPACE_NUMBERS = itertools.count(1)


def document_id(document):
    return str(document.relative_to(REPO_ROOT))


def recipes(document):
    return [block for block in parse_blocks(document) if block.kind == "recipe"]


def marker_problems(document):
    """What breaks the convention in one document, one message per problem."""
    problems = []
    names = {}
    for block in parse_blocks(document):
        if block.lang in SHELL_LANGS:
            problems.append("%s: a ```%s block; write shell commands in ```sh blocks with a recipe or not-run "
                            "marker, output in ```text" % (block.where, block.lang))
            continue
        if block.kind and block.kind not in MARKER_KINDS:
            problems.append("%s: unknown marker %r (known: %s)" % (block.where, block.kind, ", ".join(MARKER_KINDS)))
        if block.lang == "sh" and block.kind not in ("recipe", "not-run"):
            problems.append("%s: a ```sh block without <!-- recipe: NAME --> or <!-- not-run: reason --> "
                            "on the line before it" % block.where)
        if block.kind == "recipe":
            if block.lang not in RECIPE_LANGS:
                problems.append("%s: a recipe must be a ```sh or ```python block, not ```%s" % (block.where, block.lang))
            if not RECIPE_NAME.match(block.value):
                problems.append("%s: recipe name %r: use letters, digits and dashes" % (block.where, block.value))
            elif block.value in names:
                problems.append("%s: recipe name %r is already used at line %d" % (block.where, block.value, names[block.value]))
            names.setdefault(block.value, block.line)
        if block.kind == "not-run" and not block.value:
            problems.append("%s: not-run needs a reason" % block.where)
    return problems


# --------------------------------------------------------------------------- the convention


@pytest.mark.parametrize("document", DOCUMENTS, ids=document_id)
def test_every_shell_block_is_marked(document):
    problems = marker_problems(document)
    assert not problems, "\n".join(problems)


def test_the_parser_sees_what_a_reader_sees(tmp_path):
    # The checks above can fail: unmarked, misnamed and duplicate blocks are all reported.
    sample = tmp_path / "sample.md"
    sample.write_text(
        "```sh\nls\n```\n\n"
        "<!-- recipe: two words -->\n```sh\nls\n```\n\n"
        "<!-- recipe: list -->\n```sh\nls\n```\n"
        "<!-- recipe: list -->\n```sh\nls -l\n```\n\n"
        "<!-- not-run: needs an Azure VM -->\n```sh\ncurl http://169.254.169.254/\n```\n\n"
        "1. item\n\n   ```console\n   $ ls\n   ```\n\n"
        "```\n```sh\n```\n",
        encoding="utf-8")
    problems = marker_problems(sample)
    parsed = parse_blocks(sample)
    assert [(block.line, block.lang, block.kind, block.value) for block in parsed] == [
        (1, "sh", "", ""), (6, "sh", "recipe", "two words"), (11, "sh", "recipe", "list"),
        (15, "sh", "recipe", "list"), (20, "sh", "not-run", "needs an Azure VM"), (26, "console", "", ""),
        (30, "", "", "")]
    assert parsed[-2].text == "$ ls\n"
    assert parsed[-1].text == "```sh\n", "a bare fence opens a block too"
    assert len(problems) == 4, problems
    assert "sample.md:1: a ```sh block without" in problems[0]
    assert "'two words'" in problems[1]
    assert "already used at line 11" in problems[2]
    assert "```console" in problems[3]


# --------------------------------------------------------------------------- files shown in the docs


def significant_lines(text):
    """The lines of a file that carry content: no blank lines, no comment-only lines, no trailing spaces."""
    return [line.rstrip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith(("#", ";"))]


def shown_in(block_text, file_text):
    shown, lines = significant_lines(block_text), significant_lines(file_text)
    return bool(shown) and any(lines[start:start + len(shown)] == shown for start in range(len(lines) - len(shown) + 1))


@pytest.mark.parametrize("document", DOCUMENTS, ids=document_id)
def test_files_shown_in_the_docs_match_them(document):
    problems = []
    for block in parse_blocks(document):
        if block.kind != "file":
            continue
        path = REPO_ROOT / block.value
        if not path.is_file():
            problems.append("%s: %s is not a file of the repository" % (block.where, block.value))
        elif not shown_in(block.text, path.read_text(encoding="utf-8")):
            problems.append("%s: the block is not (a part of) %s as it is now" % (block.where, block.value))
    assert not problems, "\n".join(problems)


def test_shown_in_compares_content_not_comments():
    file_text = "# header\nplugin: x\n\n# why\nstrict: true\ngroups:\n  a: b\n"
    assert shown_in("plugin: x\nstrict: true\n", file_text)
    assert shown_in("strict: true   \n# a comment of the doc's own\ngroups:\n  a: b\n", file_text)
    assert not shown_in("plugin: x\ngroups:\n  a: b\n", file_text)
    assert not shown_in("strict: false\n", file_text)
    assert not shown_in("# only a comment\n", file_text)


# --------------------------------------------------------------------------- YAML and Python snippets


def is_playbook(document):
    return (isinstance(document, list) and bool(document)
            and all(isinstance(play, dict) and ("hosts" in play or "import_playbook" in play) for play in document))


@pytest.mark.parametrize("document", DOCUMENTS, ids=document_id)
def test_snippets_parse_and_playbooks_pass_syntax_check(document, collection_install, tmp_path):
    problems = []
    playbooks = []
    for block in parse_blocks(document):
        if block.lang in ("yaml", "yml"):
            try:
                loaded = list(yaml.safe_load_all(block.text))
            except yaml.YAMLError as exc:
                problems.append("%s: not YAML: %s" % (block.where, exc))
                continue
            if block.kind != "file" and len(loaded) == 1 and is_playbook(loaded[0]):
                path = tmp_path / ("playbook-line-%d.yml" % block.line)
                path.write_text(block.text, encoding="utf-8")
                playbooks.append((block, path))
        elif block.lang == "python" and block.kind != "recipe":
            try:
                ast.parse(block.text, filename=block.where)
            except SyntaxError as exc:
                problems.append("%s: not Python: %s" % (block.where, exc))
    env = ansible_environment(tmp_path, collection_install.path)
    for block, path in playbooks:
        checked = subprocess.run([tool_path("ansible-playbook"), "--syntax-check", "-i", "localhost,", str(path)],
                                 env=env, cwd=str(tmp_path), stdin=subprocess.DEVNULL, capture_output=True,
                                 text=True, timeout=120, check=False)
        if checked.returncode != 0:
            problems.append("%s: ansible-playbook --syntax-check failed:\n%s%s"
                            % (block.where, checked.stdout[-3000:], checked.stderr[-3000:]))
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- running the recipes


def copy_repository(target):
    """The files of the checkout that git tracks or would track, with .venv linked to the checkout's."""
    listed = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True, timeout=60).stdout.decode("utf-8").split("\0")
    for relative in filter(None, listed):
        source = REPO_ROOT / relative
        if not (source.is_file() or source.is_symlink()):
            continue  # deleted in the working tree
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination, follow_symlinks=False)
    (target / ".venv").symlink_to(TOOLS_BIN.parent, target_is_directory=True)
    return target


def recipe_environment(workspace, home):
    """A new user's shell after setup: .venv/bin first on PATH, an empty HOME, no Ansible settings.

    PATH entries inside the caller's own HOME (a version manager's shims, say)
    go too: they belong to a user whose HOME the recipes do not have.
    """
    dropped = ("ANSIBLE_", "PYTEST_", "XDG_", "VIRTUAL_ENV", "PYTHONPATH", "PYENV", "COLLECTIONS_PATHS")
    env = {name: value for name, value in os.environ.items() if not name.startswith(dropped)}
    own_home = os.path.expanduser("~").rstrip(os.sep) + os.sep
    system_path = [entry for entry in env.get("PATH", os.defpath).split(os.pathsep)
                   if entry and not (entry + os.sep).startswith(own_home)]
    env.update(HOME=str(home), PWD=str(workspace),
               PATH=os.pathsep.join([str(workspace / ".venv" / "bin")] + system_path))
    return env


class Namespace:
    """A network namespace with only a loopback interface, for one recipe."""

    def __init__(self):
        self.name = "imds-recipe-%d-%d" % (os.getpid(), next(_NAMESPACE_NUMBERS))
        subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=30, capture_output=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True, timeout=30, capture_output=True)

    def command(self, argv):
        return ["ip", "netns", "exec", self.name] + list(argv)

    def pids(self):
        listed = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True, timeout=30, check=False)
        return [int(pid) for pid in listed.stdout.split()]

    def processes(self):
        """'PID command line' of every process still running in the namespace."""
        described = []
        for pid in self.pids():
            try:
                command = Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            described.append("%d %s" % (pid, command.strip()))
        return described

    def kill_all(self):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)

    def delete(self):
        self.kill_all()
        subprocess.run(["ip", "netns", "delete", self.name], timeout=30, capture_output=True, check=False)


def run_recipe(block, workspace, env, scripts):
    """Run one recipe block; returns a failure message, or None when it passed."""
    suffix = ".py" if block.lang == "python" else ".sh"
    script = scripts / ("%s-%s%s" % (block.document.stem, block.value, suffix))
    script.write_text(block.text, encoding="utf-8")
    output_path = scripts / (script.name + ".out")
    namespace = Namespace()
    try:
        started = time.monotonic()
        with open(output_path, "wb") as output:
            process = subprocess.Popen(namespace.command(RECIPE_LANGS[block.lang] + [str(script)]), cwd=str(workspace),
                                       env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            try:
                returncode = process.wait(timeout=RECIPE_TIMEOUT)
                verdict = None if returncode == 0 else "exited with status %d" % returncode
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
                verdict = "did not finish within %.0f s" % RECIPE_TIMEOUT
        # What the recipe stopped at its end (kill) may take a moment to exit.
        deadline = time.monotonic() + STOP_GRACE
        while namespace.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        left_running = namespace.processes()
        if verdict is None and left_running:
            verdict = "left processes running (a recipe stops what it starts): " + "; ".join(left_running)
    finally:
        namespace.delete()
    if verdict is None:
        return None
    output_text = output_path.read_text(encoding="utf-8", errors="replace")
    return "recipe %r (%s) %s after %.0f s:\n%s\n--- output (last %d characters) ---\n%s" % (
        block.value, block.where, verdict, time.monotonic() - started, block.text, OUTPUT_TAIL,
        output_text[-OUTPUT_TAIL:])


DOCUMENTS_WITH_RECIPES = [document for document in DOCUMENTS if recipes(document)]


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("document", DOCUMENTS_WITH_RECIPES, ids=document_id)
def test_recipes_run_as_written(document, tmp_path):
    workspace = copy_repository(tmp_path / "repository")
    home = tmp_path / "home"
    home.mkdir()
    scripts = tmp_path / "recipes"
    scripts.mkdir()
    env = recipe_environment(workspace, home)
    for block in recipes(document):
        failure = run_recipe(block, workspace, env, scripts)
        # A later recipe may need what this one made: stop at the first failure.
        assert failure is None, failure


def test_a_failing_or_leaky_recipe_fails(tmp_path):
    # The runner itself: a failing command in the middle, a leftover process and a
    # request off the machine are all caught.
    workspace = tmp_path / "repository"
    workspace.mkdir()
    (workspace / ".venv").symlink_to(TOOLS_BIN.parent, target_is_directory=True)
    env = recipe_environment(workspace, tmp_path)
    scripts = tmp_path / "recipes"
    scripts.mkdir()

    def block(name, text, lang="sh"):
        return Block(REPO_ROOT / "docs" / "sample.md", 1, lang, "recipe", name, text)

    assert run_recipe(block("ok", "test \"$HOME\" = %s\npython3 -c 'print(1)'\n" % tmp_path), workspace, env, scripts) is None
    failed = run_recipe(block("middle", "false\necho not reached\n"), workspace, env, scripts)
    assert "exited with status 1" in failed and "not reached" not in failed.split("--- output")[1]
    leaky = run_recipe(block("leaky", "sleep 300 &\n"), workspace, env, scripts)
    assert "left processes running" in leaky and "sleep 300" in leaky
    offline = run_recipe(block("offline", "curl -sS --max-time 5 http://169.254.169.254/metadata/versions\n"),
                         workspace, env, scripts)
    assert "exited with status" in offline
    assert run_recipe(block("python", "import os\nassert os.getcwd() == %r\n" % str(workspace), "python"),
                      workspace, env, scripts) is None
