"""Which code is recorded: include/exclude by package, file glob and object, through the CLI
on a small project laid out on disk; the standard library skipped, site-packages traced,
synthetic code never recorded; scopes_skipped counted once per code object."""
from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest
from fe2e_support import (
    PY,
    call,
    filter_meta,
    functions,
    last_values,
    pythonpath,
    recorded_paths,
    write_filter,
    write_tree,
)

PROJECT = {
    "main.py": """
        from shop import core
        from shop.vendor import lib
        from shop.generated import gen_a
        from tools import fmt


        def main():
            cart = core.Cart()
            n = cart.put(core.add(1, 2))
            for _ in range(20):
                h = lib.helper(n)
            g = gen_a.gen(h)
            return fmt.show(g)


        result = main()
        """,
    "shop/__init__.py": "BRAND = 'shop'\n",
    "shop/core.py": """
        def add(a, b):
            total = a + b
            return total


        class Cart:
            def __init__(self):
                self.items = []

            def put(self, x):
                self.items.append(x)
                return len(self.items)
        """,
    # Distinct module bodies: rewind must tell equal code objects of different files apart,
    # but that is tested on its own (test_identical_code_in_two_files_decided_separately).
    "shop/vendor/__init__.py": "KIND = 'vendor'\n",
    "shop/vendor/lib.py": """
        def helper(v):
            w = v * 2
            return w
        """,
    "shop/generated/__init__.py": "KIND = 'generated'\n",
    "shop/generated/gen_a.py": """
        def gen(v):
            out = v + 100
            return out
        """,
    "tools/__init__.py": "KIND = 'tools'\n",
    "tools/fmt.py": """
        def show(v):
            return "<%d>" % v
        """,
}

ALL_FUNCTIONS = {"<__main__>", "main", "<shop>", "<shop.core>", "add", "Cart", "Cart.__init__", "Cart.put",
                 "<shop.vendor>", "<shop.vendor.lib>", "helper", "<shop.generated>", "<shop.generated.gen_a>",
                 "gen", "<tools>", "<tools.fmt>", "show"}


@pytest.fixture
def project(tmp_path) -> Path:
    return write_tree(tmp_path / "proj", PROJECT)


def run(record, project, body, backend_env=None, **defaults):
    filt = write_filter(project / "filter.toml", "scope-test", body, **defaults)
    rec = record(project / "main.py", options=["--trace-filter", str(filt)], env=backend_env)
    assert rec.proc.returncode == 0, rec.stderr
    return rec.view


def test_no_user_filter_records_the_whole_project(record, project, backend):
    rec = record(project / "main.py", env=backend)
    v = rec.view
    assert functions(v) == {"<toplevel>"} | ALL_FUNCTIONS
    assert all(p.startswith(str(project)) for p in recorded_paths(v))
    assert call(v, "main").returned == "<102>"


def test_exclude_package_with_dot_star_includes_the_package_itself(record, project, backend):
    v = run(record, project, """
        [[scope.rules]]
        selector = "pkg:shop.vendor.*"
        exec = "skip"
        """, backend)
    assert functions(v) == {"<toplevel>"} | ALL_FUNCTIONS - {"<shop.vendor>", "<shop.vendor.lib>", "helper"}
    # The skipped code still ran: its result is visible in the caller.
    assert last_values(v, "main")["h"] == 2
    assert call(v, "gen").args == {"v": 2}
    assert not v.open_at_end


def test_plain_pkg_selector_matches_only_that_module(record, project):
    v = run(record, project, """
        [[scope.rules]]
        selector = "pkg:shop"
        exec = "skip"
        """)
    assert "<shop>" not in functions(v)
    assert {"<shop.core>", "add", "helper", "gen"} <= functions(v)


def test_include_packages_only(record, project, backend):
    v = run(record, project, """
        [[scope.rules]]
        selector = "pkg:__main__"
        exec = "trace"

        [[scope.rules]]
        selector = "pkg:shop.vendor.*"
        exec = "trace"
        """, backend, exec_="skip")
    assert functions(v) == {"<toplevel>", "<__main__>", "main", "<shop.vendor>", "<shop.vendor.lib>", "helper"}
    assert len(v.calls_of("helper")) == 20
    assert call(v, "main").returned == "<102>"


def test_exclude_by_file_glob(record, project, backend):
    v = run(record, project, """
        [[scope.rules]]
        selector = "file:shop/generated/*.py"
        exec = "skip"

        [[scope.rules]]
        selector = "file:**/fmt.py"
        exec = "skip"
        """, backend)
    assert functions(v) == {"<toplevel>"} | ALL_FUNCTIONS - {"<shop.generated>", "<shop.generated.gen_a>", "gen",
                                                            "<tools.fmt>", "show"}


def test_include_by_file_glob_with_double_star(record, project):
    v = run(record, project, """
        [[scope.rules]]
        selector = "file:shop/**/*.py"
        exec = "trace"

        [[scope.rules]]
        selector = "file:shop/core.py"
        exec = "skip"
        """, exec_="skip")
    # `shop/**/*.py` matches shop/__init__.py too (a ** component also matches zero directories).
    assert functions(v) == {"<toplevel>", "<shop>", "<shop.vendor>", "<shop.vendor.lib>", "helper",
                            "<shop.generated>", "<shop.generated.gen_a>", "gen"}


def test_file_selectors_are_relative_to_the_filters_own_directory(record, project):
    # A filter outside .codetracer/ has its own directory as project root: code outside it
    # never matches its file: rules.
    filt = write_filter(project / "filters" / "f.toml", "elsewhere", """
        [[scope.rules]]
        selector = "file:**"
        exec = "skip"
        """)
    rec = record(project / "main.py", options=["--trace-filter", str(filt)])
    assert functions(rec.view) == {"<toplevel>"} | ALL_FUNCTIONS


def test_exclude_and_include_by_object(record, project, backend):
    v = run(record, project, """
        [[scope.rules]]
        selector = "obj:shop.core.Cart.*"
        exec = "skip"

        [[scope.rules]]
        selector = "obj:regex:\\\\.helper$"
        exec = "skip"
        """, backend)
    # obj:shop.core.Cart.* selects the methods, not the class body (obj:shop.core.Cart).
    assert functions(v) == {"<toplevel>"} | ALL_FUNCTIONS - {"Cart.__init__", "Cart.put", "helper"}
    assert last_values(v, "main")["n"] == 1


def test_last_matching_rule_wins_object_inside_skipped_package(record, project):
    v = run(record, project, """
        [[scope.rules]]
        selector = "pkg:shop.*"
        exec = "skip"

        [[scope.rules]]
        selector = "obj:shop.core.add"
        exec = "trace"

        [[scope.rules]]
        selector = "obj:{__main__.<module>,tools.*}"
        exec = "skip"
        """)
    assert functions(v) == {"<toplevel>", "main", "add"}
    add = call(v, "add")
    assert add.args == {"a": 1, "b": 2} and add.returned == 3
    assert add.parent.function == "main"


def test_synthetic_code_is_never_recorded(record, tmp_path, backend):
    write_tree(tmp_path / "syn", {"main.py": """
        from dataclasses import dataclass

        ns = {"__name__": __name__}
        exec(compile("def made(q):\\n    r = q + 1\\n    return r\\n", "<string>", "exec"), ns)
        exec(compile("def other(q):\\n    return q * 3\\n", "<generated>", "exec"), ns)


        @dataclass
        class P:
            x: int


        def main():
            a = ns["made"](1)
            b = ns["other"](a)
            p = P(b)
            return eval("a + b")


        main()
        """})
    script = tmp_path / "syn" / "main.py"
    # Rules that select the synthetic code by module and by name: still never recorded.
    filt = write_filter(tmp_path / "syn" / "all.toml", "trace-main", """
        [[scope.rules]]
        selector = "pkg:__main__"
        exec = "trace"

        [[scope.rules]]
        selector = "obj:__main__.*"
        exec = "trace"
        """, exec_="trace")
    rec = record(script, options=["--trace-filter", str(filt)], env=backend)
    v = rec.view
    assert not any(p.startswith("<") for p in v.paths)
    # P.__init__ is the dataclass's generated __init__ (file "<string>").
    assert functions(v) == {"<toplevel>", "<__main__>", "P", "main"}
    main_values = last_values(v, "main")
    assert main_values["a"] == 2 and main_values["b"] == 6
    assert main_values["p"] == {"__type__": "P", "x": 6}
    assert call(v, "main").returned == 8


# -- the standard library and site-packages -------------------------------------------------


def fake_site_packages(root: Path) -> Path:
    """A tiny library installed into a directory laid out like a real site-packages."""
    site = root / "env" / "lib" / PY / "site-packages"
    write_tree(site, {
        "fakelib/__init__.py": """
            from .ops import double

            VERSION = "1.0"
            """,
        "fakelib/ops.py": """
            def double(v):
                result = v * 2
                return result
            """,
    })
    return site


SITE_SCRIPT = """
    import json
    import textwrap

    import fakelib


    def main():
        d = json.dumps({"a": 1})
        t = textwrap.dedent("  x")
        r = fakelib.double(21)
        return d, t, r


    main()
    """


def test_stdlib_skipped_and_site_packages_traced(record, tmp_path, backend):
    site = fake_site_packages(tmp_path)
    script = write_tree(tmp_path / "app", {"main.py": SITE_SCRIPT}) / "main.py"
    rec = record(script, env={**pythonpath(site), **backend})
    v = rec.view
    assert functions(v) == {"<toplevel>", "<__main__>", "main", "<fakelib>", "<fakelib.ops>", "double"}
    double = call(v, "double")
    assert double.args == {"v": 21} and double.returned == 42
    assert "/site-packages/fakelib/" in double.path
    stdlib = sysconfig.get_paths()["stdlib"]
    assert not any(p.startswith(stdlib) for p in v.paths)
    assert call(v, "main").returned == ('{"a": 1}', "x", 42)
    # Every stdlib code object that ran was decided (and skipped) once.
    assert filter_meta(v)["stats"]["scopes_skipped"] > 0


def test_user_default_skip_also_skips_site_packages(record, tmp_path):
    site = fake_site_packages(tmp_path)
    script = write_tree(tmp_path / "app", {"main.py": SITE_SCRIPT}) / "main.py"
    filt = write_filter(tmp_path / "app" / "only-main.toml", "only-main", """
        [[scope.rules]]
        selector = "pkg:__main__"
        exec = "trace"
        """, exec_="skip")
    rec = record(script, options=["--trace-filter", str(filt)], env=pythonpath(site))
    assert functions(rec.view) == {"<toplevel>", "<__main__>", "main"}


def test_installed_markdown_function_traced(record, tmp_path):
    markdown = pytest.importorskip("markdown")
    assert "site-packages" in markdown.__file__
    script = write_tree(tmp_path / "md", {"main.py": """
        from markdown import util


        def main():
            return util.code_escape("<a & b>")


        main()
        """}) / "main.py"
    filt = write_filter(tmp_path / "md" / "md.toml", "one-markdown-function", """
        [[scope.rules]]
        selector = "pkg:__main__"
        exec = "trace"

        [[scope.rules]]
        selector = "obj:markdown.util.code_escape"
        exec = "trace"
        """, exec_="skip")
    rec = record(script, options=["--trace-filter", str(filt)])
    v = rec.view
    assert functions(v) == {"<toplevel>", "<__main__>", "main", "code_escape"}
    escape = call(v, "code_escape")
    assert Path(escape.path).resolve() == Path(markdown.util.__file__).resolve()
    assert escape.args == {"text": "<a & b>"} and escape.returned == "&lt;a &amp; b&gt;"
    assert v.lines_of("code_escape")[-1] == v.lines_of("code_escape")[0] + 6


def test_scopes_skipped_counts_code_objects_once(record, project):
    baseline = record(project / "main.py").view
    skipped = run(record, project, """
        [[scope.rules]]
        selector = "pkg:shop.vendor.*"
        exec = "skip"
        """)
    base_count = filter_meta(baseline)["stats"]["scopes_skipped"]
    # helper runs 20 times but is one code object; with the two module bodies: 3.
    assert filter_meta(skipped)["stats"]["scopes_skipped"] == base_count + 3




def test_identical_code_in_two_files_decided_separately(record, tmp_path, backend):
    same = """
        def helper(v):
            w = v * 2
            return w
        """
    root = write_tree(tmp_path / "dup", {"a.py": same, "b.py": same, "main.py": """
        import a
        import b

        x = a.helper(1)
        y = b.helper(2)
        """})
    rec = record(root / "main.py", env=backend)
    helpers = [(Path(c.path).name, c.args, c.returned) for c in rec.view.calls_of("helper")]
    assert helpers == [("a.py", {"v": 1}, 2), ("b.py", {"v": 2}, 4)]

    filt = write_filter(root / "skip-a.toml", "skip-a", """
        [[scope.rules]]
        selector = "pkg:a"
        exec = "skip"
        """)
    rec = record(root / "main.py", options=["--trace-filter", str(filt)], env=backend)
    helpers = [(Path(c.path).name, c.args, c.returned) for c in rec.view.calls_of("helper")]
    assert helpers == [("b.py", {"v": 2}, 4)]
