# -*- coding: utf-8 -*-
# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Ready for Galaxy and Automation Hub: the tarball that ansible-galaxy builds
# from a developer's checkout, with all the local files a developer has
# (virtual environments, caches, test output, fact caches, older tarballs),
# carries exactly the files git tracks that galaxy.yml does not leave out,
# and its metadata says where the project lives. A release can be cut from
# the changelog fragments.

import collections
import fnmatch
import json
import shutil
import subprocess
import tarfile

import pytest
import yaml

from support.ansible_env import ansible_environment, tool_path
from support.paths import REPO_ROOT
from support.playbook import GALAXY_TIMEOUT, run_command

GALAXY = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text(encoding="utf-8"))

# Files a working checkout accumulates; none may reach the tarball.
LOCAL_FILES = (
    ".venv/bin/python",
    ".cache/matrix/ansible-core-2.16/bin/ansible",
    ".cache/demo/nginx/nginx.conf",
    ".ansible/roles/cache.json",
    ".pytest_cache/v/cache/nodeids",
    ".hypothesis/examples/entry",
    "tests/output/junit/python3.11-modules.xml",
    "plugins/module_utils/__pycache__/_imds.cpython-311.pyc",
    "changelogs/.plugin-cache.yaml",
    "examples/fleet/.facts/vm01",
    "examples/fleet/reports/fleet.csv",
    "benchmarks/results/run.tmp",
    "imds-azure-0.0.1.tar.gz",
)

# Without these the collection does not work or cannot be published.
REQUIRED = (
    "MANIFEST.json", "FILES.json", "README.md", "COPYING", "meta/runtime.yml", "meta/execution-environment.yml",
    "plugins/modules/loadbalancer_facts.py", "plugins/modules/metadata_info.py",
    "extensions/eda/plugins/event_source/scheduled_events.py",
    "roles/nginx_frontends/meta/argument_specs.yml", "roles/nginx_frontends/meta/main.yml",
    "changelogs/changelog.yaml", "changelogs/config.yaml", "docs/compatibility.md",
)


def git_files():
    done = subprocess.run(["git", "-C", str(REPO_ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          capture_output=True, check=True, timeout=60)
    return sorted(path for path in done.stdout.decode("utf-8").split("\0") if path and (REPO_ROOT / path).is_file())


def left_out_by_galaxy_yml(path):
    """Whether a build_ignore pattern of galaxy.yml (matched like ansible-galaxy does) covers path or a parent."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes for pattern in GALAXY["build_ignore"])


BuiltTarball = collections.namedtuple("BuiltTarball", "path members manifest")


@pytest.fixture(scope="module")
def built_from_busy_checkout(tmp_path_factory):
    """Build the tarball from a copy of the checkout with every kind of local file added; return its member names."""
    workdir = tmp_path_factory.mktemp("galaxy")
    checkout = workdir / "checkout"
    for path in git_files():
        target = checkout / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, target)
    for path in LOCAL_FILES:
        (checkout / path).parent.mkdir(parents=True, exist_ok=True)
        (checkout / path).write_text("local file\n", encoding="utf-8")
    dist = workdir / "dist"
    dist.mkdir()
    env = ansible_environment(workdir, workdir / "collections")
    built = run_command([tool_path("ansible-galaxy"), "collection", "build", str(checkout), "--output-path", str(dist)],
                        env, workdir, GALAXY_TIMEOUT, "ansible-galaxy collection build")
    assert built.returncode == 0, built.stdout + built.stderr
    (tarball,) = dist.glob("imds-azure-*.tar.gz")
    with tarfile.open(tarball) as archive:
        members = {member.name: member for member in archive.getmembers()}
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    return BuiltTarball(tarball, members, manifest)


def test_tarball_has_exactly_the_tracked_files_galaxy_yml_keeps(built_from_busy_checkout):
    members = built_from_busy_checkout.members
    assert built_from_busy_checkout.path.name == "imds-azure-%s.tar.gz" % GALAXY["version"]
    files = sorted(name for name, member in members.items() if member.isfile())
    # galaxy.yml itself becomes MANIFEST.json.
    expected = sorted([path for path in git_files() if path != "galaxy.yml" and not left_out_by_galaxy_yml(path)]
                      + ["MANIFEST.json", "FILES.json"])
    assert files == expected
    assert not set(LOCAL_FILES) & set(members)
    for path in REQUIRED:
        assert path in members, path


def test_tarball_has_no_developer_files(built_from_busy_checkout):
    members = built_from_busy_checkout.members
    top_level = sorted({name.split("/")[0] for name in members})
    assert top_level == ["COPYING", "FILES.json", "MANIFEST.json", "README.md", "benchmarks", "changelogs", "docs",
                         "examples", "extensions", "meta", "plugins", "roles", "tests", "tools"]
    assert not [name for name in members if "__pycache__" in name or name.endswith((".pyc", ".tar.gz"))]


def test_manifest_says_where_the_project_lives(built_from_busy_checkout):
    info = built_from_busy_checkout.manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("imds", "azure", GALAXY["version"])
    for key in ("repository", "documentation", "issues"):
        assert info[key] and info[key].startswith("https://"), key
    assert info["license"] == ["GPL-3.0-or-later"]
    assert {"azure", "imds", "loadbalancer"} <= set(info["tags"])
    assert all(tag == tag.lower() and tag.replace("_", "").isalnum() and len(tag) <= 64 for tag in info["tags"])
    assert len(info["tags"]) <= 20
    assert info["readme"] == "README.md" and info["description"]


def test_a_release_can_be_cut_from_the_fragments(tmp_path):
    # What a maintainer runs to release: antsibull-changelog turns every fragment into CHANGELOG.rst.
    release = tmp_path / "release"
    for path in ["galaxy.yml"] + [path for path in git_files() if path.startswith("changelogs/")]:
        (release / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, release / path)
    fragments = {path.name: yaml.safe_load(path.read_text(encoding="utf-8"))
                 for path in (release / "changelogs" / "fragments").glob("*.yml")}
    assert fragments
    done = subprocess.run([tool_path("antsibull-changelog"), "release", "--version", GALAXY["version"],
                           "--date", "2026-01-01"], cwd=str(release), capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    changelog = (release / "CHANGELOG.rst").read_text(encoding="utf-8")
    assert "v%s" % GALAXY["version"] in changelog
    released = yaml.safe_load((release / "changelogs" / "changelog.yaml").read_text(encoding="utf-8"))
    changes = released["releases"][GALAXY["version"]]["changes"]
    assert changes.get("release_summary")
    for name, fragment in fragments.items():
        for section, entries in fragment.items():
            for entry in [entries] if isinstance(entries, str) else entries:
                assert " ".join(entry.split()) in " ".join(changelog.split()), (name, section)
    assert not list((release / "changelogs" / "fragments").glob("*.yml")), "keep_fragments: false removes them"
