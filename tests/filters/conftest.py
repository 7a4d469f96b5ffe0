"""Fixtures for the filter engine tests: write filter files, build chains without the
process environment leaking in."""
from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from rewind import errors, filters

HEADER = """\
[meta]
name = "{name}"
version = 1

[scope]
default_exec = "{exec_}"
default_value_action = "{value}"
"""


def filter_text(body: str = "", *, name: str = "test", exec_: str = "trace", value: str = "allow") -> str:
    return HEADER.format(name=name, exec_=exec_, value=value) + textwrap.dedent(body)


@pytest.fixture
def write_filter(tmp_path):
    """write_filter(body, path="f.toml", header=True, **header_fields) -> absolute Path."""

    def write(body: str = "", path: str = "f.toml", *, header: bool = True, **fields) -> Path:
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        text = filter_text(body, **fields) if header else textwrap.dedent(body)
        target.write_text(text, encoding="utf-8")
        return target

    return write


@pytest.fixture
def chain_of(tmp_path):
    """chain_of(*paths, **build_chain kwargs): build_chain with an empty environment."""

    def build(*specs, **kwargs) -> filters.FilterChain:
        kwargs.setdefault("environ", {})
        return filters.build_chain(list(specs), **kwargs)

    return build


@pytest.fixture
def invalid(write_filter):
    """invalid(body, **kw) -> the UsageError loading that filter raises."""

    def load(body: str, *, header: bool = True, **fields) -> errors.UsageError:
        path = write_filter(body, header=header, **fields)
        with pytest.raises(errors.UsageError) as info:
            filters.load_filter_file(path)
        assert info.value.code == "ERR_INVALID_FILTER", str(info.value)
        assert info.value.context["file"] == str(path.resolve())
        return info.value

    return load


def _line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    seen = 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


@pytest.fixture
def line_of():
    """line_of(path, needle, occurrence=1) -> 1-based line of the n-th line containing needle."""
    return _line_of
