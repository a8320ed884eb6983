# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Many module runs at once on one VM: 24 inventory hosts share one emulated
# IMDS, which answers at most 5 requests per second and throttles the rest
# with 429, as Azure does. Every run must still succeed inside the default
# retry budget, and the backoff must keep the total number of attempts small.

import time

from support.faults import bundled_scenario, load_figures, max_in_window, request_times, traceback_lines

RUNS = 24
RATE_LIMIT = 5                 # answered requests per second, enforced by the emulator
DEFAULT_RETRY_TIMEOUT = 70.0   # the module default, left in force here
# Attempts per run the backoff must stay under. Measured: 3.6 to 3.9 (see
# docs/reliability.md); the margin keeps the test from failing on a slow start.
MAX_ATTEMPTS_PER_RUN = 5
# How much earlier than its admission the emulator may log a request's arrival.
ARRIVAL_JITTER = 0.05

PLAYBOOK = """
- name: Read the load balancer facts on many hosts of one VM at once
  hosts: all
  gather_facts: false
  tasks:
    - name: Read the load balancer facts
      imds.azure.loadbalancer_facts:
        endpoint: "{{ imds_endpoint }}"
"""


def test_concurrent_runs_on_one_vm_all_succeed_without_a_retry_storm(emulator, run_playbook):
    scenario = bundled_scenario("documented")
    imds = emulator(scenario)
    assert imds.scenario()["rate_limit"] == {"requests": RATE_LIMIT, "seconds": 1.0}
    hosts = {"run%02d" % index: {"ansible_connection": "local", "imds_endpoint": imds.endpoint} for index in range(RUNS)}

    started = time.time()
    result = run_playbook(PLAYBOOK, inventory={"all": {"hosts": hosts}}, extra_args=("--forks", str(RUNS)))
    finished = time.time()
    requests = imds.requests()
    figures = load_figures(requests, started)
    figures["runs"] = RUNS
    figures["attempts_per_run"] = round(figures["requests"] / RUNS, 2)
    figures["playbook_wall_s"] = round(finished - started, 1)
    print("\nload: %s" % ", ".join("%s=%s" % item for item in sorted(figures.items())))

    result.assert_ok()
    assert traceback_lines(result) == []
    served = scenario["loadbalancer"]["loadbalancer"]
    frontends = {entry["frontendIpAddress"] for section in served.values() for entry in section}
    for host in hosts:
        facts = result.task("Read the load balancer facts", host)["ansible_facts"]["azure_loadbalancer"]
        assert facts["available"] is True and set(facts["frontend_ips"]) == frontends, host

    # Each run stops at its first answer: exactly one 200 per run.
    assert figures["answered_200"] == RUNS
    # Nothing but answers and throttling: no other error reached the clients.
    assert figures["other"] == 0, [entry["status"] for entry in requests]
    # The emulated VM kept to its limit, and the runs got through it. The log
    # has arrival times, taken just before the limiter admits a request, so
    # the window is shortened by a little to allow for the gap between the two.
    assert max_in_window(request_times(requests, 200), window=1.0 - ARRIVAL_JITTER) <= RATE_LIMIT
    assert figures["throttled_429"] > 0, "the runs never hit the rate limit; the test proves nothing"
    # Backoff with jitter, not a retry storm.
    assert figures["requests"] < MAX_ATTEMPTS_PER_RUN * RUNS, figures
    # Every run finished inside the retry budget.
    assert figures["spread_first_to_last_success_s"] < DEFAULT_RETRY_TIMEOUT
    for entry in requests:
        assert entry["headers"].get("Metadata") == "true"
