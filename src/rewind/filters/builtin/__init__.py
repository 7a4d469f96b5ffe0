"""Packaged builtin filters (data only): default.toml, pytest.toml, unittest.toml."""
