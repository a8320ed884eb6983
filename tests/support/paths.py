# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where things are in the repository, and the IMDS paths the tests ask for."""

from pathlib import Path

from imds_emulator import INSTANCE_PATH, LOADBALANCER_MIN_VERSION, LOADBALANCER_PATH

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools"
EMULATOR_SCRIPT = TOOLS_DIR / "imds_emulator.py"
SCENARIO_DIR = TOOLS_DIR / "scenarios"
EXAMPLES_DIR = REPO_ROOT / "examples"

# The load balancer path with the first API version that serves it.
LOADBALANCER_URL_PATH = f"{LOADBALANCER_PATH}?api-version={LOADBALANCER_MIN_VERSION}"

__all__ = ["EMULATOR_SCRIPT", "EXAMPLES_DIR", "INSTANCE_PATH", "LOADBALANCER_PATH", "LOADBALANCER_URL_PATH",
           "REPO_ROOT", "SCENARIO_DIR", "TOOLS_DIR"]
