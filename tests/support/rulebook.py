# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running ansible-rulebook as a user would, for the EDA source tests and the benchmark.

A RulebookProcess runs the real ansible-rulebook (from the project's virtual
environment, with Java) in its own session, with the installed collection as
its collections path, and reads what it prints: ``print_event`` actions print
each event as a Python literal on one line, which ``events()`` parses. It is
stopped by its PID (SIGINT, then SIGKILL), never by name.
"""

import ast
import signal
import subprocess
import time
from pathlib import Path

import yaml

from .ansible_env import ansible_environment, tool_path

RULEBOOK_START_TIMEOUT = 60.0
RULEBOOK_STOP_TIMEOUT = 20.0
LOCAL_INVENTORY = {"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}


def print_events_rulebook(source_args, condition="event.change is defined", name="Print every event", extra_rules=()):
    """A rulebook whose one source is imds.azure.scheduled_events with ``source_args`` and that prints each event."""
    rules = [{"name": name, "condition": condition, "action": {"print_event": {}}}]
    return [{
        "name": "Scheduled events",
        "hosts": "all",
        # Every rule an event matches fires (the print and, say, a shutdown), not only the first.
        "match_multiple_rules": True,
        "sources": [{"imds.azure.scheduled_events": dict(source_args)}],
        "rules": rules + list(extra_rules),
    }]


class RulebookProcess:
    """One ansible-rulebook run in the background: ``events()``, ``wait_for()``, ``stop()``."""

    def __init__(self, workdir, collections_path, rulebook, inventory=None, variables=None, env=None, cwd=None,
                 verbose=True, extra_args=()):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        rulebook_path = Path(rulebook) if isinstance(rulebook, Path) else self._write("rulebook.yml", rulebook)
        inventory_path = Path(inventory) if isinstance(inventory, Path) else self._write(
            "inventory.yml", inventory or LOCAL_INVENTORY)
        command = [tool_path("ansible-rulebook"), "--rulebook", str(rulebook_path), "--inventory", str(inventory_path)]
        if variables:
            command += ["--vars", str(self._write("vars.yml", variables))]
        if verbose:
            command.append("-v")
        command += list(extra_args)
        self.command = command
        environment = ansible_environment(self.workdir, collections_path)
        environment.update(env or {})
        self.stdout_path = self.workdir / "rulebook.stdout"
        self.stderr_path = self.workdir / "rulebook.stderr"
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            # Own session: a signal to it never reaches the test process group.
            self.process = subprocess.Popen(command, env=environment, cwd=str(cwd or self.workdir),
                                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
                                            start_new_session=True)
        self.started_at = time.time()

    def _write(self, name, content):
        path = self.workdir / name
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False),
                        encoding="utf-8")
        return path

    # -- what it printed -----------------------------------------------------

    def stdout(self):
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    def stderr(self):
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def output(self):
        return self.stdout() + self.stderr()

    def events(self):
        """The events print_event printed so far, oldest first."""
        found = []
        for line in self.stdout().splitlines():
            if line.startswith("{") and line.endswith("}"):
                try:
                    value = ast.literal_eval(line)
                except (ValueError, SyntaxError):
                    continue
                if isinstance(value, dict):
                    found.append(value)
        return found

    def describe(self):
        return (f"{' '.join(self.command)} (exit {self.process.poll()})\n--- stdout:\n{self.stdout()[-6000:]}\n"
                f"--- stderr:\n{self.stderr()[-6000:]}")

    # -- waiting and stopping ------------------------------------------------

    @property
    def running(self):
        return self.process.poll() is None

    def wait_for(self, check, timeout, what):
        """Wait until ``check(events)`` is true; fails the test with the output after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if check(events):
                return events
            if not self.running:
                break
            time.sleep(0.2)
        events = self.events()
        if check(events):
            return events
        raise AssertionError(f"ansible-rulebook: {what} did not happen within {timeout:.0f}s; events: {events}\n"
                             f"{self.describe()}")

    def wait(self, timeout):
        """Wait for it to exit by itself; its exit code."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"ansible-rulebook did not exit within {timeout:.0f}s\n{self.describe()}") from None

    def stop(self, sig=signal.SIGINT, timeout=RULEBOOK_STOP_TIMEOUT):
        """Signal it (as Ctrl-C or a service manager would), SIGKILL if it lingers; (exit code, seconds it took)."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return self.process.returncode, time.monotonic() - started


def tracebacks(text):
    """Lines of ``text`` that start a Python traceback."""
    return [line for line in text.splitlines() if "Traceback (most recent call last)" in line]
