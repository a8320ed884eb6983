# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The command line: start-up line, ready file, signals, exit codes, fleets.

import json
import selectors
import signal
import socket
import subprocess
import sys
import time

import pytest
import imds_emulator
from support.emulator_http import compact_json, fetch, fetch_events, fetch_lb, make_scenario, post_events, start_requests
from support.paths import EMULATOR_SCRIPT

START_TIMEOUT = 15


class Running:
    """An emulator process that has printed its endpoints line."""

    def __init__(self, *args):
        self.process = subprocess.Popen([sys.executable, str(EMULATOR_SCRIPT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        self.ready = json.loads(self._read_ready_line())
        self.endpoints = self.ready["endpoints"]

    def _read_ready_line(self):
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(START_TIMEOUT):
                self.process.kill()
                raise AssertionError("the emulator printed no ready line")
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(5)
            raise AssertionError(f"the emulator exited early: {self.process.stderr.read()}")
        return line

    def stop(self, signum=signal.SIGTERM):
        self.process.send_signal(signum)
        stdout, stderr = self.process.communicate(timeout=10)
        return self.process.returncode, stdout, stderr

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def run_cli():
    started = []

    def run(*args):
        running = Running(*args)
        started.append(running)
        return running

    yield run
    for running in started:
        running.kill()


def run_to_completion(*args):
    return subprocess.run([sys.executable, str(EMULATOR_SCRIPT), *args], capture_output=True, text=True, timeout=30, check=False)


def assert_one_error_line(result, *fragments):
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("imds_emulator: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


# -- single scenario

@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_scenario_starts_answers_and_exits_cleanly(run_cli, tmp_path, signum):
    ready_file = tmp_path / "ready.json"
    running = run_cli("--scenario", "documented", "--port", "0", "--ready-file", str(ready_file))
    endpoint = running.endpoints["default"]
    assert list(running.endpoints) == ["default"]
    assert endpoint.startswith("http://127.0.0.1:") and not endpoint.endswith(":0")
    assert json.loads(ready_file.read_text(encoding="utf-8")) == running.ready
    assert [path.name for path in tmp_path.iterdir()] == ["ready.json"]  # no temporary file left behind
    assert fetch_lb(endpoint).json() == imds_emulator.load_scenario("documented")["loadbalancer"]
    returncode, stdout, stderr = running.stop(signum)
    assert (returncode, stdout, stderr) == (0, "", "")


def test_ready_line_is_the_only_stdout_line(run_cli):
    running = run_cli("--scenario", "empty", "--port", "0")
    fetch_lb(running.endpoints["default"])
    returncode, stdout, _ignored = running.stop()
    assert returncode == 0 and stdout == ""  # everything after the ready line: nothing


def test_scenario_from_a_path(run_cli, tmp_path):
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(make_scenario(loadbalancer={"loadbalancer": {"inboundRules": []}})), encoding="utf-8")
    running = run_cli("--scenario", str(path), "--port", "0")
    assert fetch_lb(running.endpoints["default"]).json() == {"loadbalancer": {"inboundRules": []}}


def test_log_requests_prints_one_line_per_request(run_cli):
    running = run_cli("--scenario", "transient-then-ok", "--port", "0", "--log-requests")
    fetch_lb(running.endpoints["default"])
    fetch_lb(running.endpoints["default"])
    fetch(running.endpoints["default"], "/__emulator__/requests")
    returncode, _ignored, stderr = running.stop()
    assert returncode == 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 2
    assert "GET /metadata/loadbalancer?api-version=2020-10-01 -> 503 (fault 0: status)" in lines[0]


def test_log_requests_shows_approvals(run_cli):
    running = run_cli("--scenario", "scheduled-reboot", "--port", "0", "--log-requests")
    endpoint = running.endpoints["default"]
    event_id = fetch_events(endpoint).json()["Events"][0]["EventId"]
    assert post_events(endpoint, start_requests(event_id)).status == 200
    returncode, _ignored, stderr = running.stop()
    assert returncode == 0
    lines = stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("GET /metadata/scheduledevents?api-version=2020-07-01 -> 200")
    assert lines[1].endswith("POST /metadata/scheduledevents?api-version=2020-07-01 -> 200")


def test_list_scenarios():
    result = run_to_completion("--list-scenarios")
    assert result.returncode == 0
    assert result.stdout.split() == imds_emulator.bundled_scenarios()


# -- bad input

def test_invalid_scenario_file_exits_2_with_one_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"faults": [{"status": 503, "reset": true}]}', encoding="utf-8")
    assert_one_error_line(run_to_completion("--scenario", str(path), "--port", "0"), "faults[0]", "exactly one action")


def test_malformed_scenario_json_exits_2(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{", encoding="utf-8")
    assert_one_error_line(run_to_completion("--scenario", str(path)), "not valid JSON")


def test_unknown_scenario_name_exits_2_and_lists_names():
    assert_one_error_line(run_to_completion("--scenario", "nope"), "unknown scenario", "documented")


@pytest.mark.parametrize("args, fragment", [
    (["--scenario", "documented", "--port", "http"], "--port"),
    (["--scenario", "documented", "--port", "70000"], "--port"),
    ([], "--scenario"),
    (["--scenario", "documented", "--fleet", "f.json"], "not allowed"),
    (["--scenario", "documented", "--colour"], "--colour"),
])
def test_bad_arguments_exit_2_with_one_line(args, fragment):
    assert_one_error_line(run_to_completion(*args), fragment)


def test_port_in_use_exits_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_error_line(run_to_completion("--scenario", "documented", "--port", str(port)), "cannot listen")


def test_unwritable_ready_file_exits_2(tmp_path):
    result = run_to_completion("--scenario", "documented", "--port", "0", "--ready-file", str(tmp_path / "missing-dir" / "ready.json"))
    assert_one_error_line(result, "ready file")


def test_main_returns_2_in_process_for_bad_input(capsys):
    assert imds_emulator.main(["--scenario", "no-such-scenario"]) == 2
    assert "unknown scenario" in capsys.readouterr().err


# -- fleets

def test_fleet_serves_each_host_on_its_own_port(run_cli, tmp_path):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "scenarios" / "vm02.json").write_text(
        json.dumps(make_scenario(loadbalancer={"loadbalancer": {"inboundRules": [{"frontendPort": 2}]}}, rate_limit={"requests": 1, "seconds": 60})),
        encoding="utf-8")
    fleet = {"hosts": [
        {"name": "vm01", "scenario": "documented", "port": 0},
        {"name": "vm02", "scenario": "scenarios/vm02.json", "port": 0},
        {"name": "vm03", "scenario": make_scenario(loadbalancer_error="not_available")},
    ]}
    fleet_path = tmp_path / "fleet.json"
    fleet_path.write_text(json.dumps(fleet), encoding="utf-8")
    ready_file = tmp_path / "ready.json"
    running = run_cli("--fleet", str(fleet_path), "--ready-file", str(ready_file))
    endpoints = running.endpoints
    assert list(endpoints) == ["vm01", "vm02", "vm03"]
    assert len({endpoint.rsplit(":", 1)[1] for endpoint in endpoints.values()}) == 3
    assert json.loads(ready_file.read_text(encoding="utf-8")) == running.ready

    assert fetch_lb(endpoints["vm01"]).json() == imds_emulator.load_scenario("documented")["loadbalancer"]
    assert fetch_lb(endpoints["vm02"]).body == compact_json({"loadbalancer": {"inboundRules": [{"frontendPort": 2}]}})
    assert fetch_lb(endpoints["vm03"]).status == 404
    # Each host has its own rate limiter and its own log.
    assert fetch_lb(endpoints["vm02"]).status == 429
    assert fetch_lb(endpoints["vm01"]).status == 200
    assert len(fetch(endpoints["vm01"], "/__emulator__/requests").json()["requests"]) == 2
    assert len(fetch(endpoints["vm03"], "/__emulator__/requests").json()["requests"]) == 1

    returncode, _ignored, stderr = running.stop()
    assert (returncode, stderr) == (0, "")


@pytest.mark.parametrize("fleet, fragment", [
    ({"hosts": []}, "at least one host"),
    ({"hosts": [{"name": "a", "scenario": "documented"}, {"name": "a", "scenario": "empty"}]}, "duplicate host name"),
    ({"hosts": [{"name": "a b", "scenario": "documented"}]}, "'name'"),
    ({"hosts": [{"name": "a", "scenario": "documented", "port": -1}]}, "'port'"),
    ({"hosts": [{"name": "a"}]}, "'scenario'"),
    ({"hosts": [{"name": "a", "scenario": "unknown-one"}]}, "unknown scenario"),
    ({"hosts": [{"name": "a", "scenario": {"faults": [{}]}}]}, "faults[0]"),
    ({"hosts": [{"name": "a", "scenario": "documented", "ip": "1"}]}, "'ip'"),
    ({"vms": []}, "hosts"),
])
def test_invalid_fleet_exits_2(tmp_path, fleet, fragment):
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(fleet), encoding="utf-8")
    assert_one_error_line(run_to_completion("--fleet", str(path)), fragment)


def test_missing_fleet_file_exits_2(tmp_path):
    assert_one_error_line(run_to_completion("--fleet", str(tmp_path / "none.json")), "cannot read fleet file")


def test_fleet_of_sixty_hosts_in_one_process():
    hosts = [imds_emulator.HostSpec(f"vm{index:02d}", imds_emulator.load_scenario(make_scenario(
        loadbalancer={"loadbalancer": {"inboundRules": [{"frontendPort": index}]}}))) for index in range(60)]
    fleet = imds_emulator.Fleet(hosts).start()
    try:
        endpoints = fleet.endpoints
        assert len(set(endpoints.values())) == 60
        for index, (name, endpoint) in enumerate(endpoints.items()):
            assert fetch_lb(endpoint).json() == {"loadbalancer": {"inboundRules": [{"frontendPort": index}]}}
            assert len(fleet[name].requests()) == 1
    finally:
        started = time.monotonic()
        fleet.stop()
        stop_seconds = time.monotonic() - started
    print(f"stopping 60 emulators took {stop_seconds:.3f} s")
    with pytest.raises(RuntimeError):
        fleet["vm00"].endpoint  # noqa: B018  (the property raises once stopped)
