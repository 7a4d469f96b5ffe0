"""rewind's pytest plugin: `pytest --rewind[=DIR]` records each test into its own trace.

This module is what pytest loads at every start-up (entry point `pytest11`), so it imports
nothing: rewind itself (rewind.pytest_plugin) is imported only when `--rewind` is given.
Disable it altogether with `-p no:pytest_rewind`.  See docs/test-frameworks.md.
(PYTEST_DONT_REWRITE: nothing to rewrite here.)
"""
import pytest  # already imported: pytest is loading this plugin

DEFAULT_DIR = "rewind-traces"


def pytest_addoption(parser):
    group = parser.getgroup("rewind", "recording tests with rewind (CodeTracer traces)")
    group.addoption("--rewind", dest="rewind_dir", nargs="?", const=DEFAULT_DIR, default=None, metavar="DIR",
                    help="record each test (fixture setup and teardown included) into DIR/<test id> "
                         "(default DIR: %s; give DIR as --rewind=DIR)" % DEFAULT_DIR)
    group.addoption("--rewind-failed-only", dest="rewind_failed_only", action="store_true", default=False,
                    help="with --rewind: keep only the traces of failing tests")


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    """A bare `--rewind` never takes the next word as its DIR (`pytest --rewind tests/`
    records into the default DIR and runs tests/): DIR is given as `--rewind=DIR`."""
    changed = False
    for i, arg in enumerate(args):
        if arg == "--rewind" and i + 1 < len(args) and not args[i + 1].startswith("-"):
            args[i] = "--rewind=" + DEFAULT_DIR
            changed = True
    if changed:
        import copy
        early_config.known_args_namespace = parser.parse_known_args(
            args, namespace=copy.copy(early_config.known_args_namespace))


def pytest_configure(config):
    if config.getoption("rewind_dir", None) is None:
        return
    from rewind.pytest_plugin import RewindPlugin
    config.pluginmanager.register(RewindPlugin(config), "rewind-recorder")
