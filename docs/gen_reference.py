"""Writes docs/reference/configuration.md and docs/reference/cli.md from the code
(``make reference``). ``tests/test_docs.py`` fails when the committed pages differ from
what this writes, so a new key or option cannot go undocumented."""

from __future__ import annotations

from pathlib import Path

from fedcmi.cli import build_parser
from fedcmi.tools.reference import cli_reference, config_reference

FOLDER = Path(__file__).resolve().parent / "reference"


def pages() -> dict[Path, str]:
    return {
        FOLDER / "configuration.md": config_reference(),
        FOLDER / "cli.md": cli_reference(build_parser()),
    }


if __name__ == "__main__":
    for path, text in pages().items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
