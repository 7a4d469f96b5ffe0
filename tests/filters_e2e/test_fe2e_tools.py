"""`rewind filter check` and `rewind filter explain` through the CLI, on the worked example
of docs/filters.md (the filter files are taken from the document itself), and explain
checked against what a recording with the same chain actually does."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fe2e_support import DROPPED, REDACTED, call, filter_meta, write_filter, write_tree

from rewind_testing import ROOT, run_rewind

DOC = (ROOT / "docs" / "filters.md").read_text(encoding="utf-8")


def doc_block(lang: str, starts_with: str) -> str:
    for block in re.findall(r"```%s\n(.*?)```" % lang, DOC, flags=re.S):
        if block.startswith(starts_with):
            return block
    raise AssertionError(f"no ```{lang} block starting with {starts_with!r} in docs/filters.md")


SHOP = {
    "src/checkout.py": """
        from shop.payments import stripe
        from shop.vendor import tool


        def main():
            tool.noop()
            return stripe.charge({"id": 7}, "4242-4242", 30)


        main()
        """,
    "src/shop/__init__.py": "NAME = 'shop'\n",
    "src/shop/vendor/__init__.py": "NAME = 'vendor'\n",
    "src/shop/vendor/tool.py": """
        def noop():
            return None
        """,
    "src/shop/payments/__init__.py": "NAME = 'payments'\n",
    "src/shop/payments/stripe.py": """
        def charge(user, card_number, amount):
            fee = amount // 10
            n = 0
            for i in range(2):
                n += i
            receipt = "ok"
            return receipt
        """,
}


@pytest.fixture
def shop(tmp_path) -> Path:
    root = write_tree(tmp_path / "shop", SHOP)
    (root / ".codetracer").mkdir()
    (root / ".codetracer" / "trace-filter.toml").write_text(doc_block("toml", "# Maintainer baseline"),
                                                             encoding="utf-8")
    (root / "debug-payments.toml").write_text(doc_block("toml", "# debug-payments.toml"), encoding="utf-8")
    return root.resolve()


def rewind(*args, cwd: Path, env=None):
    return run_rewind(list(args), cwd=cwd, env=env)


def explain_json(shop: Path, *args, env=None) -> dict:
    proc = rewind("filter", "explain", "--json", "--trace-filter", "../debug-payments.toml", *args,
                  cwd=shop / "src", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# -- explain ----------------------------------------------------------------------------------


def test_explain_output_matches_the_documented_example(shop):
    console = doc_block("console", "$ cd src\n")
    expected_user = console.split("$ rewind filter explain")[1].split("\n", 1)[1].strip("\n")
    expected_user = expected_user.replace("/tmp/shop", str(shop))
    proc = rewind("filter", "explain", "--trace-filter", "../debug-payments.toml", "shop.payments.stripe.charge",
                  "arg:user", cwd=shop / "src")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip("\n") == expected_user

    proc = rewind("filter", "explain", "--trace-filter", "../debug-payments.toml", "shop.payments.stripe.charge",
                  "arg:card_number", cwd=shop / "src")
    assert proc.returncode == 0, proc.stderr
    documented = console.split("arg:card_number\n")[1].split("...\n")[1].strip("\n").splitlines()
    got = proc.stdout.strip("\n").splitlines()
    assert got[-3] == documented[0]
    assert got[-2].startswith(documented[1].split("(?:^|(?<=[^A-Za-z])")[0])
    assert got[-1] == documented[2]


def test_explain_agrees_with_the_recording(record, shop, backend):
    rec = record(shop / "src" / "checkout.py", options=["--trace-filter", str(shop / "debug-payments.toml")],
                 cwd=shop / "src", env=backend)
    v = rec.view
    assert [f["name"] for f in filter_meta(v)["filters"]] == ["builtin-default", "shop-baseline", "debug-payments"]
    # __main__ and shop.vendor are skipped: only charge and the shop modules are recorded
    assert {c.function for c in v.calls} == {"<toplevel>", "<shop>", "<shop.payments>", "<shop.payments.stripe>",
                                             "charge"}
    charge = call(v, "charge")
    last = v.steps_in("charge")[-1].values
    recorded = {("arg", name): value for name, value in charge.args.items()}
    recorded.update({("local", name): value for name, value in last.items() if name not in charge.args})
    recorded[("ret", None)] = charge.returned
    assert set(recorded) == {("arg", "user"), ("arg", "card_number"), ("arg", "amount"), ("local", "fee"),
                             ("local", "n"), ("local", "i"), ("local", "receipt"), ("ret", None)}
    for (kind, name), value in recorded.items():
        spec = "ret" if kind == "ret" else f"{kind}:{name}"
        action = explain_json(shop, "shop.payments.stripe.charge", spec)["value"]["action"]
        expected = {"allow": value, "redact": REDACTED, "drop": DROPPED if kind == "ret" else None}[action]
        assert value == expected, (spec, action, value)
    assert recorded[("arg", "user")] == [("id", 7)]
    assert recorded[("arg", "card_number")] == REDACTED and recorded[("arg", "amount")] == 30
    assert recorded[("local", "n")] == 1 and recorded[("local", "i")] == 1
    assert recorded[("local", "fee")] == REDACTED and charge.returned == REDACTED


@pytest.mark.parametrize("target", ["shop.payments.stripe.charge", "shop.payments.stripe:charge",
                                    "shop/payments/stripe.py:charge"])
def test_explain_target_forms(shop, target):
    result = explain_json(shop, target, "arg:amount")
    assert result["target"]["module"] == "shop.payments.stripe"
    assert result["target"]["qualname"] == "charge"
    assert result["target"]["file"] == str(shop / "src" / "shop" / "payments" / "stripe.py")
    assert result["exec"]["decision"] == "trace"
    decided = result["value"]["decided_by"]
    assert (result["value"]["action"], decided["filter"], decided["rule"], decided["pattern"]) == \
        ("allow", "shop-baseline", 2, 0)


def test_explain_module_exec_skip_and_overrides(shop):
    result = explain_json(shop, "shop.vendor.tool")
    assert result["target"]["qualname"] == "<module>"
    exec_ = result["exec"]
    assert exec_["decision"] == "skip"
    assert (exec_["decided_by"]["filter"], exec_["decided_by"]["rule"]) == ("shop-baseline", 1)
    assert [(s["filter"], s["rule"], s["value"]) for s in exec_["overridden"]] == [
        ("shop-baseline", 0, "trace"), ("shop-baseline", None, "skip")]
    assert [m["selector"] for m in result["matched_rules"] if m["filter"] != "builtin-default"] == [
        "pkg:shop.*", "pkg:shop.vendor.*"]


def test_explain_file_target_and_env_filter(shop):
    env_filter = write_filter(shop / "env.toml", "from-env", """
        [[scope.rules]]
        selector = "file:src/checkout.py"
        exec = "trace"
        """)
    proc = rewind("filter", "explain", "--json", "src/checkout.py", cwd=shop,
                  env={"CODETRACER_TRACE_FILTER": str(env_filter)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [c["name"] for c in result["chain"]] == ["builtin-default", "shop-baseline", "from-env"]
    assert result["exec"]["decision"] == "trace"
    assert result["exec"]["decided_by"]["filter"] == "from-env"


def test_explain_errors_exit_2(shop):
    proc = rewind("filter", "explain", "shop.payments.stripe.charge", "bogus", cwd=shop / "src")
    assert proc.returncode == 2 and "[ERR_INVALID_FILTER] bad value 'bogus'" in proc.stderr
    bad = write_filter(shop / "bad.toml", "bad", """
        [[scope.rules]]
        selector = "obj:regex:("
        """)
    proc = rewind("filter", "explain", "--trace-filter", str(bad), "shop.payments.stripe.charge", cwd=shop / "src")
    assert proc.returncode == 2 and "[ERR_INVALID_FILTER]" in proc.stderr and f"file={bad}" in proc.stderr
    proc = rewind("filter", "explain", "--trace-filter", "missing.toml", "x", cwd=shop)
    assert proc.returncode == 2 and "[ERR_FILTER_NOT_FOUND]" in proc.stderr


# -- check ------------------------------------------------------------------------------------


def test_check_valid_files(shop):
    proc = rewind("filter", "check", ".codetracer/trace-filter.toml", "debug-payments.toml", cwd=shop)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"ok: {shop / '.codetracer' / 'trace-filter.toml'} (shop-baseline, version 1, 3 rules)",
        f"ok: {shop / 'debug-payments.toml'} (debug-payments, version 1, 1 rules)",
    ]
    assert proc.stderr == ""


def test_check_reports_each_bad_file_like_recording_does(record, shop):
    bad = write_filter(shop / "bad.toml", "bad", """
        [[scope.rules]]
        selector = "pkg:shop.*"
        exce = "skip"
        """)
    also_bad = shop / "syntax.toml"
    also_bad.write_text('[meta]\nname = "x"\nversion = 1\n[scope\n', encoding="utf-8")
    proc = rewind("filter", "check", f"debug-payments.toml::{bad.name}", str(also_bad), "missing.toml", cwd=shop)
    assert proc.returncode == 2
    assert proc.stdout.splitlines() == [f"ok: {shop / 'debug-payments.toml'} (debug-payments, version 1, 1 rules)"]
    errors = proc.stderr.splitlines()
    assert len(errors) == 3, proc.stderr
    assert errors[0].startswith("[ERR_INVALID_FILTER] unknown key 'exce'")
    assert f"file={bad}, line=11, column=1, key=scope.rules[0].exce" in errors[0]
    assert errors[1].startswith("[ERR_INVALID_FILTER]") and f"file={also_bad}, line=4" in errors[1]
    assert errors[2].startswith("[ERR_FILTER_NOT_FOUND]")

    # The same message as a recording refused with that file.
    rec = record(shop / "src" / "checkout.py", options=["--trace-filter", str(bad)], expect_trace=False)
    assert rec.proc.returncode == 2
    assert rec.stderr.strip() == "rewind: error: " + errors[0]


def test_check_accepts_inherit_because_builtin_default_comes_first(tmp_path):
    only_inherit = write_filter(tmp_path / "inherit.toml", "inherit-only")
    proc = rewind("filter", "check", str(only_inherit), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"ok: {only_inherit} (inherit-only, version 1, 0 rules)")


def test_filter_without_command_is_a_usage_error(tmp_path):
    proc = rewind("filter", cwd=tmp_path)
    assert proc.returncode == 2 and "choose a command" in proc.stderr
    proc = rewind("filter", "check", cwd=tmp_path)
    assert proc.returncode == 2
