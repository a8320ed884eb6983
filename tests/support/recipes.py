# Copyright (c) 2026, imds.azure contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fenced blocks of README.md and docs/*.md and the marker on the line before each.

A block a user is told to run carries ``<!-- recipe: NAME -->`` (run by
tests/e2e/test_doc_recipes.py) or ``<!-- not-run: reason -->``; a block that
shows a file of the repository carries ``<!-- file: PATH -->``.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from .paths import REPO_ROOT

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,})(?P<lang>[A-Za-z0-9_+-]*)[ \t]*$")
MARKER = re.compile(r"^[ \t]*<!--[ \t]*(?P<kind>[a-z-]+):[ \t]*(?P<value>.*?)[ \t]*-->[ \t]*$")


@dataclass
class Block:
    """One fenced block of a document and the marker on the line before it."""

    document: Path
    line: int      # of the opening fence, 1-based
    lang: str
    kind: str      # recipe, not-run, file, or "" without a marker
    value: str     # the recipe name, the reason or the path
    text: str

    @property
    def where(self):
        try:
            shown = self.document.relative_to(REPO_ROOT)
        except ValueError:
            shown = self.document.name
        return "%s:%d" % (shown, self.line)


def parse_blocks(document):
    """The fenced blocks of a Markdown file, with their markers (lang is "" for a bare fence)."""
    lines = document.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, ticks = opening.group("indent"), opening.group("ticks")
        body = []
        end = index + 1
        while end < len(lines) and lines[end].strip() != ticks:
            line = lines[end]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            end += 1
        marker = MARKER.match(lines[index - 1]) if index > 0 else None
        kind, value = (marker.group("kind"), marker.group("value")) if marker else ("", "")
        blocks.append(Block(document, index + 1, opening.group("lang").lower(), kind, value,
                            "\n".join(body) + "\n"))
        index = end + 1
    return blocks
