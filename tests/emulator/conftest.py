# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
import imds_emulator
import pytest


@pytest.fixture
def start_emulator():
    """Start emulators on free ports; every one is stopped when the test ends."""
    started = []

    def start(scenario=None, **kwargs):
        emulator = imds_emulator.Emulator(scenario, **kwargs).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()
