"""Writes parsed.py: the builtin filters' TOML documents, parsed ahead of time.

Every recording loads builtin-default.  Parsing its TOML at each start would import
tomllib and hashlib (about 8 ms of a 60 ms start), so the parsed documents, their source
text and their SHA-256 are kept in parsed.py, which this writes from the .toml files next
to it.  The .toml files stay the source of truth: after editing one, run

    python -m rewind.filters.builtin.regenerate

tests/filters/test_builtin_parsed.py fails while parsed.py is out of date.
"""
from __future__ import annotations

import os
import pprint

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "parsed.py")
SOURCES = ("default.toml", "pytest.toml", "unittest.toml")

_HEADER = '''# ruff: noqa: E501
"""The builtin filters, parsed ahead of time. Written by
`python -m rewind.filters.builtin.regenerate` from the .toml files next to this; do not edit."""

# file name -> (sha256 of its bytes, its text, its TOML document)
BUILTINS = '''


def render() -> str:
    """The text parsed.py must have for the .toml files as they are now."""
    from ..schema import read_toml, sha256_of

    entries = {}
    for name in SOURCES:
        with open(os.path.join(HERE, name), "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")
        entries[name] = (sha256_of(raw), text, read_toml(text, name))
    return _HEADER + pprint.pformat(entries, width=110, sort_dicts=True) + "\n"


def main() -> None:
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
