"""The builtin filters are loaded from builtin/parsed.py, parsed ahead of time from the .toml
files next to it, so that a recording's start needs no TOML parser and no hashing. It must say
exactly what those files say."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from rewind import filters
from rewind.filters import chain, schema
from rewind.filters.builtin import regenerate
from rewind_testing import assert_valid, run_rewind

BUILTIN_DIR = Path(regenerate.__file__).parent


def test_parsed_module_is_up_to_date_with_the_toml_files():
    written = (BUILTIN_DIR / "parsed.py").read_text(encoding="utf-8")
    assert written == regenerate.render(), (
        "rewind/filters/builtin/parsed.py is out of date with the .toml files next to it: "
        "run `python -m rewind.filters.builtin.regenerate`")


@pytest.mark.parametrize("name", sorted(filters.BUILTIN_FILTERS))
def test_each_builtin_is_the_filter_its_toml_file_gives(name):
    raw = (BUILTIN_DIR / filters.BUILTIN_FILTERS[name]).read_bytes()
    from_toml = schema.parse_filter(raw, label=f"<inline:{name}>", root=None, builtin=True)
    if name == "builtin-default":
        from_toml = chain._with_host_rules(from_toml)
    loaded = filters.load_builtin(name)
    assert loaded == from_toml
    assert loaded.sha256 == hashlib.sha256(raw).hexdigest()
    assert loaded.source == raw.decode("utf-8")


def test_a_recording_with_only_builtin_filters_imports_no_toml_parser(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("import sys\n"
                      "print(sorted(m for m in ('tomllib', 'tomli', 'hashlib', 'pathlib') if m in sys.modules))\n")
    proc = run_rewind(["-o", str(tmp_path / "trace"), str(script)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert_valid(tmp_path / "trace")
    metadata = json.loads((tmp_path / "trace" / "trace_metadata.json").read_text())
    (default,) = [f for f in metadata["trace_filter"]["filters"] if f["name"] == "builtin-default"]
    assert default["sha256"] == hashlib.sha256((BUILTIN_DIR / "default.toml").read_bytes()).hexdigest()
