# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one launcher of tools/imds_emulator.py: start, wait until ready, stop by PID.

The tests (tests/e2e/conftest.py fixtures), the benchmarks and tools/demo.sh
start emulators through it. The emulator announces its endpoints in the file
named by --ready-file; the launcher waits for that file, and stops the process
it started (SIGTERM, then SIGKILL) by its PID, never by name.

    python tests/support/emulator.py --ready-file F --pid-file P -- ARGS...

starts one in the background for shell scripts (tools/demo.sh) and returns once
it is ready; ``python tests/support/emulator.py --stop-pid-file P`` stops it.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

if __package__:
    from .paths import EMULATOR_SCRIPT
else:  # run as a script by tools/demo.sh: the emulator is next to the tests
    EMULATOR_SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "imds_emulator.py"

EMULATOR_READY_TIMEOUT = 20.0
EMULATOR_STOP_TIMEOUT = 10.0
CONTROL_TIMEOUT = 10.0

# Control requests go straight to the emulator, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class EmulatorEndpoint:
    """Control client for one emulated VM (GET /__emulator__/requests, PUT /__emulator__/scenario, ...)."""

    def __init__(self, name, endpoint):
        self.name = name
        self.endpoint = endpoint

    def __repr__(self):
        return f"EmulatorEndpoint({self.name!r}, {self.endpoint!r})"

    def _control(self, method, path, document=None):
        data = None if document is None else json.dumps(document).encode("utf-8")
        request = urllib.request.Request(self.endpoint + "/__emulator__/" + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with _DIRECT.open(request, timeout=CONTROL_TIMEOUT) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8", "replace")
            raise AssertionError(f"emulator {self.name}: {method} /__emulator__/{path} answered {exc.code}: {body}") from None

    def requests(self):
        """IMDS requests the emulator received so far, oldest first (dicts with method, path, query, headers, status, ...)."""
        return self._control("GET", "requests")["requests"]

    def scenario(self):
        """The scenario in force, with defaults filled in."""
        return self._control("GET", "scenario")

    def set_scenario(self, scenario):
        """Replace the scenario; the emulator validates it and answers 400 (raised here) when it is invalid."""
        return self._control("PUT", "scenario", scenario)

    def reset(self):
        """Forget recorded requests and fault progress; scheduled events start over (added ones and approvals forgotten)."""
        return self._control("POST", "reset", {})

    def scheduled_events(self):
        """The scheduled events document as /metadata/scheduledevents would serve it now (not logged, not throttled)."""
        return self._control("GET", "scheduled-events")

    def approvals(self):
        """Every POST to /metadata/scheduledevents so far, oldest first: dicts with time, event_ids, status, body."""
        return self._control("GET", "scheduled-events/approvals")["approvals"]

    def approved_event_ids(self):
        """The EventIds of the approvals the emulator accepted (status 200), in the order they came."""
        return [event_id for approval in self.approvals() if approval["status"] == 200 for event_id in approval["event_ids"]]

    def add_scheduled_event(self, event):
        """Add one event (scenario form, with optional appear_after and not_before_in); the rest of the state is kept."""
        return self._control("POST", "scheduled-events/events", event)


class EmulatorProcess:
    """One tools/imds_emulator.py process and the endpoints it announced."""

    def __init__(self, arguments, workdir, prefix=()):
        """Start the emulator with ``arguments``; ``prefix`` runs it through another command (ip netns exec NAME)."""
        self.workdir = Path(workdir)
        self.ready_file = self.workdir / "ready.json"
        self.log_path = self.workdir / "emulator.log"
        if self.ready_file.exists():
            self.ready_file.unlink()  # only the file of this process says it is ready
        command = list(prefix) + [sys.executable, str(EMULATOR_SCRIPT)] + list(arguments)
        command += ["--ready-file", str(self.ready_file)]
        with open(self.log_path, "wb") as log:
            # Own session: stopping it never signals the test process group.
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=str(self.workdir), start_new_session=True)
        self.endpoints = self._wait_until_ready(command)

    def log(self):
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def _wait_until_ready(self, command):
        deadline = time.monotonic() + EMULATOR_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                # The emulator replaces the file atomically: it is complete once it exists.
                endpoints = json.loads(self.ready_file.read_text(encoding="utf-8"))["endpoints"]
                if endpoints:
                    return endpoints
            exit_code = self.process.poll()
            if exit_code is not None:
                raise AssertionError(f"emulator exited with {exit_code} before it was ready: {' '.join(command)}\n{self.log()}")
            time.sleep(0.02)
        self.stop()
        raise AssertionError(f"emulator not ready within {EMULATOR_READY_TIMEOUT:.0f}s: {' '.join(command)}\n{self.log()}")

    @property
    def running(self):
        return self.process.poll() is None

    def stop(self):
        """Stop the emulator (SIGTERM, then SIGKILL if it lingers); safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=EMULATOR_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=EMULATOR_STOP_TIMEOUT)
        return self.process.returncode


class _ProcessOwner:
    """Lifecycle of the emulator process behind an Emulator or an EmulatorFleet."""

    _process = None

    @property
    def running(self):
        return self._process.running

    def log(self):
        """What the emulator printed (stdout and stderr)."""
        return self._process.log()

    def stop(self):
        return self._process.stop()


class Emulator(_ProcessOwner, EmulatorEndpoint):
    """A single emulated VM: ``.endpoint`` is its base URL, e.g. http://127.0.0.1:40123."""

    def __init__(self, process):
        super().__init__("default", process.endpoints["default"])
        self._process = process


class EmulatorFleet(_ProcessOwner):
    """Several emulated VMs served by one process, each on its own port."""

    def __init__(self, process):
        self._process = process
        self.endpoints = dict(process.endpoints)
        self.hosts = {name: EmulatorEndpoint(name, endpoint) for name, endpoint in self.endpoints.items()}

    def __getitem__(self, name):
        return self.hosts[name]


def scenario_reference(scenario, workdir, name):
    """Turn a scenario given as a bundled name, a path or a dict into what --scenario accepts."""
    if isinstance(scenario, dict):
        path = Path(workdir) / f"{name}.json"
        path.write_text(json.dumps(scenario, indent=2), encoding="utf-8")
        return str(path)
    if isinstance(scenario, Path):
        return str(scenario.resolve())
    if isinstance(scenario, str) and scenario:
        candidate = Path(scenario)
        return str(candidate.resolve()) if candidate.is_file() else scenario
    raise TypeError(f"a scenario is a bundled scenario name, a path or a dict, not {scenario!r}")


def start_emulator(workdir, scenario="documented", host="127.0.0.1"):
    """One emulated VM on ``host`` and a free port; ``scenario`` as scenario_reference takes it."""
    reference = scenario_reference(scenario, workdir, "scenario")
    return Emulator(EmulatorProcess(["--scenario", reference, "--host", host, "--port", "0"], workdir))


def start_fleet(workdir, hosts, host="127.0.0.1"):
    """One process serving one emulated VM per entry of ``hosts`` (name -> scenario), each on a free port."""
    if not hosts:
        raise ValueError("an emulated fleet needs at least one host")
    entries = []
    for name, scenario in hosts.items():
        reference = scenario if isinstance(scenario, dict) else scenario_reference(scenario, workdir, name)
        entries.append({"name": name, "scenario": reference, "port": 0, "host": host})
    fleet_file = Path(workdir) / "fleet.json"
    fleet_file.write_text(json.dumps({"hosts": entries}, indent=2), encoding="utf-8")
    return EmulatorFleet(EmulatorProcess(["--fleet", str(fleet_file)], workdir))


def _stop_pid(pid_file):
    """Stop the emulator whose PID the start command wrote; nothing to do when it is gone."""
    try:
        pid = int(Path(pid_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + EMULATOR_STOP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def main(argv=None):
    """Shell entry point: start an emulator in the background, or stop the one started before."""
    parser = argparse.ArgumentParser(description="Start tools/imds_emulator.py and wait until it is ready, or stop it.")
    parser.add_argument("--workdir", required=True, type=Path,
                        help="directory for the ready file, the log (emulator.log) and the PID file (emulator.pid)")
    parser.add_argument("--stop", action="store_true", help="stop the emulator started with this --workdir")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="after --: the emulator's own arguments")
    options = parser.parse_args(argv)
    pid_file = options.workdir / "emulator.pid"
    if options.stop:
        _stop_pid(pid_file)
        return 0
    arguments = options.arguments[1:] if options.arguments[:1] == ["--"] else options.arguments
    options.workdir.mkdir(parents=True, exist_ok=True)
    try:
        process = EmulatorProcess(arguments, options.workdir)
    except AssertionError as exc:
        print(exc, file=sys.stderr)
        return 1
    pid_file.write_text(str(process.process.pid), encoding="utf-8")
    print(process.endpoints["default"] if "default" in process.endpoints else json.dumps(process.endpoints))
    return 0


if __name__ == "__main__":
    sys.exit(main())
