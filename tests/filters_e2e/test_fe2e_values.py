"""Which values are kept: allow / redact / drop for each value kind (local, global, arg, ret,
attr), the built-in secret redaction under project filters, and the per-kind stats in
trace_metadata.json checked against what the trace holds."""
from __future__ import annotations

from pathlib import Path

import pytest
from fe2e_support import (
    DROPPED,
    REDACTED,
    call,
    count_in_values,
    filter_meta,
    last_values,
    names_seen,
    step_values,
    struct_values,
    write_filter,
    write_tree,
)

PROGRAM = {
    "main.py": """
        from calc import ops


        def main():
            p = ops.compute(1, 2, 7, 8, scale=3, flag=True)
            d = ops.twice(5)
            return p, d


        main()
        """,
    "calc/__init__.py": "",
    "calc/ops.py": """
        LIMIT = 10


        class Inner:
            def __init__(self):
                self.deep = 1
                self._cache = "inner"


        class Point:
            def __init__(self, x, y):
                self.x = x
                self.y = y
                self._cache = {"k": 1}
                self.inner = Inner()


        def compute(a, b, *rest, scale=2, **opts):
            total = (a + b) * scale
            tmp = total + LIMIT
            p = Point(a, tmp)
            return p


        def twice(v):
            out = v * 2
            return out
        """,
}


@pytest.fixture
def program(tmp_path) -> Path:
    return write_tree(tmp_path / "prog", PROGRAM)


def run(record, program, body, env=None, **defaults):
    filt = write_filter(program / "values.toml", "values", body, **defaults)
    rec = record(program / "main.py", options=["--trace-filter", str(filt)], env=env)
    assert rec.proc.returncode == 0, rec.stderr
    return rec.view


def rule(selector: str, *patterns: tuple[str, str], value_default: str | None = None) -> str:
    text = f'\n[[scope.rules]]\nselector = "{selector}"\n'
    if value_default:
        text += f'value_default = "{value_default}"\n'
    for pattern, action in patterns:
        text += f'\n[[scope.rules.value_patterns]]\nselector = "{pattern}"\naction = "{action}"\n'
    return text


def test_baseline_values(record, program):
    rec = record(program / "main.py")
    v = rec.view
    compute = call(v, "compute")
    # a dict is a Sequence of 2-tuples
    assert compute.args == {"a": 1, "b": 2, "rest": (7, 8), "scale": 3, "opts": [("flag", True)]}
    last = last_values(v, "compute")
    assert last["total"] == 9 and last["tmp"] == 19 and last["LIMIT"] == 10
    point = {"__type__": "Point", "x": 1, "y": 19, "_cache": [("k", 1)],
             "inner": {"__type__": "Inner", "deep": 1, "_cache": "inner"}}
    assert last["p"] == point and compute.returned == point
    assert call(v, "twice").returned == 10
    stats = filter_meta(v)["stats"]
    assert stats["value_redactions"] == {} and stats["value_drops"] == {}


# -- local ------------------------------------------------------------------------------------


def test_local_redact_and_drop(record, program, backend):
    v = run(record, program, rule("pkg:calc.*", ("local:literal:tmp", "redact"), ("local:tot*", "drop")),
            env=backend)
    steps = step_values(v, "compute")
    assert all("total" not in s for s in steps)
    assert [s["tmp"] for s in steps if "tmp" in s] == [REDACTED, REDACTED]
    assert last_values(v, "compute")["p"]["y"] == 19  # only the name is filtered, not the data
    # main is not selected by the rule: its locals are untouched
    assert last_values(v, "main")["p"]["y"] == 19


def test_local_allow_under_redacting_default(record, program):
    v = run(record, program, rule("obj:calc.ops.compute", ("local:tmp", "allow"), value_default="redact"))
    last = last_values(v, "compute")
    assert last["tmp"] == 19
    assert last["total"] == REDACTED and last["a"] == REDACTED and last["p"] == REDACTED
    assert call(v, "compute").args == {n: REDACTED for n in ("a", "b", "rest", "scale", "opts")}
    # The value default also decides compute's return value.
    assert call(v, "compute").returned == REDACTED
    assert call(v, "twice").returned == 10


# -- global -----------------------------------------------------------------------------------


def test_global_redact_in_functions_and_module_code(record, program):
    v = run(record, program, rule("pkg:calc.*", ("global:LIMIT", "redact")))
    assert last_values(v, "compute")["LIMIT"] == REDACTED
    assert last_values(v, "<calc.ops>")["LIMIT"] == REDACTED
    assert last_values(v, "compute")["tmp"] == 19


def test_global_drop(record, program):
    v = run(record, program, rule("obj:calc.ops.*", ("global:regex:^LIM", "drop")))
    assert "LIMIT" not in names_seen(v, "compute")
    assert "LIMIT" not in names_seen(v, "<calc.ops>")


def test_global_allow_under_dropping_default(record, program):
    v = run(record, program, rule("obj:calc.ops.compute", ("global:literal:LIMIT", "allow"),
                                  ("local:literal:p", "allow"), ("attr:*", "allow"), value_default="drop"))
    assert names_seen(v, "compute") == {"LIMIT", "p"}
    assert last_values(v, "compute")["p"]["y"] == 19
    assert call(v, "compute").returned == DROPPED


# -- arg --------------------------------------------------------------------------------------


def test_arg_redact_in_call_and_every_step(record, program):
    v = run(record, program, rule("obj:calc.ops.compute", ("arg:{a,rest}", "redact")))
    compute = call(v, "compute")
    assert compute.args["a"] == REDACTED and compute.args["rest"] == REDACTED and compute.args["b"] == 2
    assert all(s["a"] == REDACTED and s["rest"] == REDACTED for s in step_values(v, "compute"))


def test_arg_allow_under_redacting_default(record, program):
    v = run(record, program, rule("obj:calc.ops.twice", ("arg:v", "allow"), value_default="redact"))
    twice = call(v, "twice")
    assert twice.args == {"v": 5}
    assert [s["v"] for s in step_values(v, "twice")] == [5, 5]
    assert last_values(v, "twice")["out"] == REDACTED
    assert twice.returned == REDACTED


DROPPED_ARGS = """
    def plain(secretive, keep):
        inner = secretive + keep
        secretive = inner * 2
        return secretive


    def star(*items, mode="x", **extra):
        n = len(items) + len(extra)
        return n


    def captured(hidden):
        def use():
            return hidden + 1
        r = use()
        return r


    def gen(hidden, k):
        yield k
        k = hidden
        yield k


    lam = lambda hidden: hidden * 3  # noqa: E731


    def main():
        out = [plain(1, 2), star(1, 2, mode="y", more=3), captured(4), list(gen(5, 6)), lam(7)]
        return out


    main()
    """


def test_dropped_argument_never_reappears_as_a_local(record, tmp_path, backend):
    root = write_tree(tmp_path / "drop", {"main.py": DROPPED_ARGS})
    filt = write_filter(root / "drop.toml", "drop-args",
                        rule("pkg:__main__", ("arg:{secretive,items,mode,extra,hidden}", "drop")))
    rec = record(root / "main.py", options=["--trace-filter", str(filt)], env=backend)
    v = rec.view
    assert call(v, "main").returned == [6, 3, 5, [6, 5], 21]
    expected = {
        "plain": {"keep", "inner"},
        "star": {"n"},
        "captured": {"r", "use"},
        "gen": {"k"},
        "<lambda>": set(),
    }
    for function, names in expected.items():
        assert names_seen(v, function) == names, function
    # Inside a closure the captured parameter is a free variable of another function: a
    # `local` there (contract: parameters are `arg` in the call and the steps of *that* call).
    assert last_values(v, "captured.<locals>.use") == {"hidden": 4}
    # the generator was resumed twice (Call without args) and still never showed `hidden`
    assert len(v.calls_of("gen")) >= 3
    # plain rebinds its dropped parameter: still an arg, still dropped
    assert all("secretive" not in s for s in step_values(v, "plain"))


# -- ret --------------------------------------------------------------------------------------


def test_ret_redact_and_drop(record, program, backend):
    v = run(record, program, rule("pkg:calc.*", ("ret:calc.ops.twice", "redact"), ("ret:*.compute", "drop")),
            env=backend)
    assert call(v, "twice").returned == REDACTED
    assert call(v, "compute").returned == DROPPED
    # only the return value: locals of the same name in the caller are untouched
    main_last = last_values(v, "main")
    assert main_last["d"] == 10 and main_last["p"]["x"] == 1
    # Point.__init__ returns None: not matched, allowed
    assert call(v, "Point.__init__").returned is None
    assert not v.open_at_end


def test_ret_allow_under_redacting_default(record, program):
    v = run(record, program, rule("pkg:calc.*", ("ret:regex:\\\\.twice$", "allow"), value_default="redact"))
    assert call(v, "twice").returned == 10
    assert call(v, "compute").returned == REDACTED


def test_ret_of_a_frame_left_by_an_exception(record, tmp_path, backend):
    root = write_tree(tmp_path / "exc", {"main.py": """
        def fails():
            raise ValueError("boom")


        def loud():
            raise KeyError("k")


        def main():
            for f in (fails, loud):
                try:
                    f()
                except Exception:
                    pass


        main()
        """})
    filt = write_filter(root / "f.toml", "exc", rule("pkg:__main__", ("ret:*.fails", "redact"),
                                                     ("ret:*.loud", "drop")))
    rec = record(root / "main.py", options=["--trace-filter", str(filt)], env=backend)
    assert call(rec.view, "fails").returned == REDACTED
    assert call(rec.view, "loud").returned == DROPPED


# -- attr -------------------------------------------------------------------------------------


def test_attr_drop_and_redact_in_struct_values(record, program, backend):
    v = run(record, program, rule("pkg:calc.*", ("attr:_cache", "drop"), ("attr:y", "redact")), env=backend)
    expected = {"__type__": "Point", "x": 1, "y": REDACTED, "inner": {"__type__": "Inner", "deep": 1}}
    compute = call(v, "compute")
    # in a local, in the return value, and nested one level down (Inner._cache)
    assert last_values(v, "compute")["p"] == expected
    assert compute.returned == expected
    # self in the __init__ Call args and steps
    assert call(v, "Point.__init__").args["self"] == {"__type__": "Point"}
    init_steps = step_values(v, "Point.__init__")
    assert init_steps[-1]["self"] == {"__type__": "Point", "x": 1, "y": REDACTED}  # before self.inner = ...
    assert all("_cache" not in s["self"] for s in init_steps)
    # Code the rule does not select (main) shows the same object unfiltered.
    assert last_values(v, "main")["p"]["_cache"] == [("k", 1)]
    assert last_values(v, "main")["p"]["y"] == 19


def test_attr_allow_under_redacting_default(record, program):
    v = run(record, program, rule("obj:calc.ops.compute", ("local:p", "allow"), ("attr:{x,inner,deep}", "allow"),
                                  value_default="redact"))
    assert last_values(v, "compute")["p"] == {"__type__": "Point", "x": 1, "y": REDACTED, "_cache": REDACTED,
                                              "inner": {"__type__": "Inner", "deep": 1, "_cache": REDACTED}}


def test_attr_filter_on_module_level_struct_globals(record, tmp_path):
    root = write_tree(tmp_path / "mod", {"main.py": """
        class Conf:
            def __init__(self):
                self.host = "h"
                self.api_key = "k"
                self.verbose = True


        CONF = Conf()
        done = True
        """})
    filt = write_filter(root / "f.toml", "attrs", rule("pkg:__main__", ("attr:verbose", "drop")))
    rec = record(root / "main.py", options=["--trace-filter", str(filt)])
    # api_key: the builtin secret redaction applies to attributes too
    assert last_values(rec.view, "<__main__>")["CONF"] == {"__type__": "Conf", "host": "h", "api_key": REDACTED}


# -- the builtin secret redaction under project filters ---------------------------------------

SECRETS = {
    "app/main.py": """
        API_TOKEN = "tok"


        class User:
            def __init__(self, name, password):
                self.name = name
                self.password = password


        def get_token(user):
            return "t-" + user.name


        def login(name, password):
            api_key = "k-123"
            userPassword = password + "!"
            author = "ann"
            note = "n"
            count = 3
            user = User(name, password)
            token = get_token(user)
            return API_TOKEN + token


        login("ann", "hunter2")
        """,
}




def test_secret_looking_function_names_stay_hidden(record, tmp_path):
    root = write_tree(tmp_path / "hid", {"main.py": """
        def get_token():
            return "t"


        def plain():
            return "p"


        def main():
            a = plain()
            b = get_token()
            return a + b


        main()
        """})
    rec = record(root / "main.py")
    v = rec.view
    assert names_seen(v, "main") == {"a", "b"}
    assert "get_token" not in names_seen(v, "<__main__>") and "plain" not in names_seen(v, "<__main__>")
    assert filter_meta(v)["stats"]["value_redactions"] == {"ret": 1}


def project_filter(root: Path, value: str, body: str = "") -> Path:
    return write_filter(root / ".codetracer" / "trace-filter.toml", "project",
                        body or rule("obj:*", ("local:literal:note", "allow"), value_default=value), value=value)


def secrets_are_redacted(v, *, except_names=()):
    last = last_values(v, "login")
    for name in ("password", "api_key", "userPassword", "token"):
        if name not in except_names:
            assert last[name] == REDACTED, name
    assert call(v, "login").args["password"] == REDACTED
    assert last["API_TOKEN"] == REDACTED
    assert last["user"]["password"] == REDACTED
    assert call(v, "get_token").returned == REDACTED
    assert call(v, "User.__init__").args["password"] == REDACTED


def test_builtin_redaction_survives_a_project_filter_that_allows_everything(record, tmp_path, backend):
    root = write_tree(tmp_path / "proj", SECRETS)
    project_filter(root, "allow")
    rec = record(root / "app" / "main.py", env=backend)
    v = rec.view
    assert [f["name"] for f in filter_meta(v)["filters"]] == ["builtin-default", "project"]
    secrets_are_redacted(v)
    last = last_values(v, "login")
    assert last["author"] == "ann" and last["note"] == "n" and last["count"] == 3
    assert last["user"]["name"] == "ann"


def test_builtin_redaction_survives_a_dropping_project_default(record, tmp_path):
    root = write_tree(tmp_path / "proj", SECRETS)
    project_filter(root, "drop")
    rec = record(root / "app" / "main.py")
    v = rec.view
    last = last_values(v, "login")
    # secrets stay visible as redacted; everything else no pattern names is dropped
    last.pop("get_token", None)  # see test_secret_looking_function_names_stay_hidden
    assert last == {"password": REDACTED, "api_key": REDACTED, "userPassword": REDACTED, "note": "n",
                    "token": REDACTED, "API_TOKEN": REDACTED}
    assert call(v, "login").args == {"password": REDACTED}


def test_later_rule_explicitly_allowing_a_name_overrides_the_builtin(record, tmp_path):
    root = write_tree(tmp_path / "proj", SECRETS)
    project_filter(root, "allow")
    override = write_filter(root / "debug.toml", "debug", rule("obj:__main__.login", ("local:literal:api_key", "allow"),
                                                               ("attr:password", "allow")))
    rec = record(root / "app" / "main.py", options=["--trace-filter", str(override)])
    v = rec.view
    assert [f["name"] for f in filter_meta(v)["filters"]] == ["builtin-default", "project", "debug"]
    last = last_values(v, "login")
    assert last["api_key"] == "k-123"
    assert last["user"]["password"] == "hunter2"  # attr allowed in login's frame only
    assert last["password"] == REDACTED and last["userPassword"] == REDACTED and last["token"] == REDACTED
    assert call(v, "User.__init__").args["password"] == REDACTED


# -- stats ------------------------------------------------------------------------------------


def test_stats_count_redactions_and_drops_per_kind(record, program):
    v = run(record, program, rule("obj:calc.ops.compute", ("arg:b", "redact"), ("arg:scale", "drop"),
                                  ("local:tmp", "redact"), ("local:total", "drop"), ("global:LIMIT", "redact"),
                                  ("attr:x", "redact"), ("attr:_cache", "drop"), ("ret:*", "redact"))
            + rule("obj:calc.ops.twice", ("ret:*", "drop"))
            + rule("obj:calc.ops.<module>", ("global:LIMIT", "drop")))
    stats = filter_meta(v)["stats"]
    compute = call(v, "compute")
    steps = step_values(v, "compute")
    redacted = {
        "arg": (compute.args["b"] == REDACTED) + sum(s.get("b") == REDACTED for s in steps),
        "local": sum(s.get("tmp") == REDACTED for s in steps),
        "global": sum(s.get("LIMIT") == REDACTED for s in steps),
        "attr": sum(count_in_values(s["p"], REDACTED) for s in steps if "p" in s),
        "ret": 1,
    }
    assert redacted["arg"] == 1 + len(steps)
    # One Struct with x redacted in compute's last step (p) only: the return value is redacted whole.
    assert redacted["attr"] == 1 and compute.returned == REDACTED
    assert stats["value_redactions"] == redacted
    total_lines = sum(1 for s in steps if "total" in s)  # 0: dropped everywhere
    assert total_lines == 0
    # total is bound from the second line on, scale at the Call and every line, _cache once
    # (p's one snapshot) plus Inner._cache nested in it, twice's return once.
    # LIMIT at module level: at every step after its own line (the first)
    module_steps = step_values(v, "<calc.ops>")
    assert all("LIMIT" not in s for s in module_steps)
    assert stats["value_drops"] == {"arg": 1 + len(steps), "local": len(steps) - 1, "attr": 2, "ret": 1,
                                    "global": len(module_steps) - 1}




def test_stats_count_return_values_of_frames_left_by_exceptions(record, tmp_path):
    root = write_tree(tmp_path / "exc", {"main.py": """
        def fails():
            raise ValueError("boom")


        try:
            fails()
        except ValueError:
            pass
        """})
    filt = write_filter(root / "f.toml", "exc", rule("obj:__main__.fails", ("ret:*", "redact")))
    rec = record(root / "main.py", options=["--trace-filter", str(filt)])
    assert call(rec.view, "fails").returned == REDACTED
    assert filter_meta(rec.view)["stats"]["value_redactions"] == {"ret": 1}


def test_struct_values_carry_no_dropped_attribute_anywhere(record, program):
    v = run(record, program, rule("obj:*", ("attr:_cache", "drop")))
    structs = struct_values(v)
    assert structs and all("_cache" not in s for s in structs)
