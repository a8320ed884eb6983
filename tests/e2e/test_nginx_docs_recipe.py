# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# docs/nginx_frontends.md "Testing off Azure" tells users to run a shell
# block: run it exactly as written, from the repository root with .venv/bin
# first on PATH, as the recipe convention says.

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from support.paths import REPO_ROOT
DOC = REPO_ROOT / "docs" / "nginx_frontends.md"
RECIPE = "off-azure-render"
WORK_DIR = REPO_ROOT / ".cache" / "nginx-off-azure"
TIMEOUT = 600


def recipe(text, name):
    """The ```sh block right after <!-- recipe: name -->."""
    match = re.search(r"^<!-- recipe: %s -->\n```sh\n(.*?)^```$" % re.escape(name), text, re.MULTILINE | re.DOTALL)
    assert match, f"no sh block after <!-- recipe: {name} --> in {DOC}"
    return match.group(1)


def test_testing_off_azure_runs_as_written():
    script = recipe(DOC.read_text(encoding="utf-8"), RECIPE)
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        env.pop(name, None)
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    # Its own process group: the emulator the recipe starts is stopped with it, even when a step fails.
    process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=REPO_ROOT, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    try:
        output = process.communicate(timeout=TIMEOUT)[0]
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        process.wait()
    try:
        assert process.returncode == 0, output[-6000:]
        assert "failed=0" in output, output[-6000:]
        assert "test is successful" in output, output[-3000:]
        listens = re.findall(r"^\d+:\s+listen (\S+)", output, re.MULTILINE)
        assert listens == ["*:443", "[::]:443"], output[-3000:]
        assert (WORK_DIR / "nginx.conf").is_file()
    finally:
        shutil.rmtree(WORK_DIR, ignore_errors=True)
