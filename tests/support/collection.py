# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This checkout as the imds.azure collection, for code that imports it in process (the benchmarks)."""

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from .paths import REPO_ROOT


@functools.lru_cache(maxsize=None)
def importable_checkout():
    """A collections path whose ansible_collections/imds/azure links to this checkout, importable by name.

    Made once per process (removed when it ends) and handed to ansible's own
    collection loader, so ``import ansible_collections.imds.azure...`` works
    without touching sys.path. Other collections can be written next to it.
    """
    root = Path(tempfile.mkdtemp(prefix="imds-azure-collections-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    namespace = root / "ansible_collections" / "imds"
    namespace.mkdir(parents=True)
    (namespace / "azure").symlink_to(REPO_ROOT, target_is_directory=True)
    from ansible.plugins.loader import init_plugin_loader  # pylint: disable=import-outside-toplevel

    init_plugin_loader([str(root)])
    return root
