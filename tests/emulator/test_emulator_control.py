# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# The control API under /__emulator__/ and its Python equivalents.

import time

import pytest
import imds_emulator
from support.emulator_http import SIMPLE_LOADBALANCER, control, fetch, fetch_lb, make_scenario


def test_request_log_records_imds_traffic(start_emulator):
    emulator = start_emulator(make_scenario())
    before = time.time()
    fetch_lb(emulator, headers={"Metadata": "true", "User-Agent": "imds-test/1"})
    fetch(emulator, "/metadata/versions", method="POST", body=b"{}")
    log = control(emulator, "GET", "requests").json()["requests"]
    assert len(log) == 2
    first, second = log
    assert first["method"] == "GET" and first["path"] == "/metadata/loadbalancer"
    assert first["query"] == "api-version=2020-10-01"
    assert first["headers"]["Metadata"] == "true"
    assert first["headers"]["User-Agent"] == "imds-test/1"
    assert first["status"] == 200 and first["fault"] is None
    assert before <= first["time"] <= second["time"] <= time.time()
    assert (second["method"], second["status"]) == ("POST", 405)
    assert emulator.requests() == log


def test_control_calls_are_not_logged_throttled_or_header_checked(start_emulator):
    emulator = start_emulator(make_scenario(rate_limit={"requests": 1, "seconds": 60}))
    for _ignored in range(20):
        reply = control(emulator, "GET", "requests")
        assert reply.status == 200
        assert reply.json() == {"requests": []}
    assert fetch_lb(emulator).status == 200  # the single allowed request is still available


def test_get_scenario_returns_the_normalised_scenario(start_emulator):
    emulator = start_emulator(make_scenario(faults=[{"count": 1, "status": 503}]))
    scenario = control(emulator, "GET", "scenario").json()
    assert scenario["loadbalancer"] == SIMPLE_LOADBALANCER
    assert scenario["faults"] == [{"count": 1, "status": 503, "path": "/metadata"}]
    assert "api_versions" in scenario and "instance" in scenario
    # What GET returns is itself a valid scenario.
    assert control(emulator, "PUT", "scenario", scenario).status == 200


def test_put_scenario_replaces_data_and_resets_state(start_emulator):
    emulator = start_emulator(make_scenario(rate_limit={"requests": 2, "seconds": 60}))
    fetch_lb(emulator)
    fetch_lb(emulator)
    assert fetch_lb(emulator).status == 429
    replacement = make_scenario(loadbalancer={"loadbalancer": {"inboundRules": []}}, faults=[{"count": 1, "status": 503}],
                                rate_limit={"requests": 2, "seconds": 60}, description="replaced")
    reply = control(emulator, "PUT", "scenario", replacement)
    assert reply.status == 200
    assert reply.json()["description"] == "replaced"
    assert emulator.requests() == []
    assert fetch_lb(emulator).status == 503
    assert fetch_lb(emulator).json() == {"loadbalancer": {"inboundRules": []}}
    assert fetch_lb(emulator).status == 429


@pytest.mark.parametrize("document, complaint", [
    ({"loadbalancer": {}, "fualts": []}, "'fualts'"),
    ({"faults": [{"status": 503, "hang": True}]}, "faults[0]"),
    ({"api_versions": []}, "api_versions"),
    ({"loadbalancer_error": "gone"}, "loadbalancer_error"),
    ([1, 2], "JSON object"),
])
def test_put_invalid_scenario_is_refused_and_the_old_one_kept(start_emulator, document, complaint):
    emulator = start_emulator(make_scenario())
    reply = control(emulator, "PUT", "scenario", document)
    assert reply.status == 400
    assert complaint in reply.json()["error"]
    assert fetch_lb(emulator).json() == SIMPLE_LOADBALANCER


def test_put_malformed_json_is_refused(start_emulator):
    emulator = start_emulator(make_scenario())
    reply = fetch(emulator, "/__emulator__/scenario", method="PUT", headers={}, body=b"{not json")
    assert reply.status == 400
    assert "not valid JSON" in reply.json()["error"]


def test_reset_clears_log_faults_and_rate_limiter(start_emulator):
    emulator = start_emulator(make_scenario(faults=[{"count": 1, "status": 503}], rate_limit={"requests": 2, "seconds": 60}))
    assert [fetch_lb(emulator).status for _ignored in range(3)] == [503, 200, 429]
    reply = control(emulator, "POST", "reset")
    assert (reply.status, reply.json()) == (200, {"status": "ok"})
    assert emulator.requests() == []
    assert [fetch_lb(emulator).status for _ignored in range(3)] == [503, 200, 429]


@pytest.mark.parametrize("method, name", [("POST", "requests"), ("DELETE", "scenario"), ("GET", "reset")])
def test_control_wrong_method_is_405(start_emulator, method, name):
    assert control(start_emulator(make_scenario()), method, name).status == 405


def test_control_unknown_path_is_404(start_emulator):
    reply = control(start_emulator(make_scenario()), "GET", "status")
    assert reply.status == 404
    assert "/requests" in reply.json()["error"]


def test_python_api_mirrors_the_control_api(start_emulator):
    emulator = start_emulator(make_scenario(faults=[{"count": 1, "status": 500}]))
    assert fetch_lb(emulator).status == 500
    emulator.reset()
    assert emulator.requests() == []
    assert fetch_lb(emulator).status == 500
    emulator.set_scenario("empty")
    assert fetch_lb(emulator).json() == {"loadbalancer": {"publicIpAddresses": [], "inboundRules": [], "outboundRules": []}}
    assert emulator.scenario["description"]
    assert [entry["status"] for entry in emulator.requests()] == [200]


def test_request_log_keeps_only_the_newest_entries(start_emulator, monkeypatch):
    monkeypatch.setattr(imds_emulator, "MAX_LOGGED_REQUESTS", 3)
    emulator = start_emulator(make_scenario())
    for version in ("2020-10-01", "2020-12-01", "2021-01-01", "2021-02-01", "2021-03-01"):
        fetch(emulator, "/metadata/loadbalancer?api-version=" + version)
    assert [entry["query"] for entry in emulator.requests()] == ["api-version=2021-01-01", "api-version=2021-02-01", "api-version=2021-03-01"]
