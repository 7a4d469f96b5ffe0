"""Policy values from the environment and from explicit overrides."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from rewind import errors, policy
from rewind.policy import Policy, load_policy

TRUE_WORDS = ["1", "true", "t", "yes", "y", "on"]
FALSE_WORDS = ["0", "false", "f", "no", "n", "off"]
BOOL_FIELDS = {
    "CODETRACER_REQUIRE_TRACE": "require_trace",
    "CODETRACER_KEEP_PARTIAL_TRACE": "keep_partial_trace",
    "CODETRACER_JSON_ERRORS": "json_errors",
    "CODETRACER_PROPAGATE_SCRIPT_EXIT": "propagate_script_exit",
}
BOUND_FIELDS = {
    "CODETRACER_VALUE_MAX_DEPTH": "max_depth",
    "CODETRACER_VALUE_MAX_ITEMS": "max_items",
    "CODETRACER_VALUE_MAX_STRING": "max_string",
}


def case_variants(word: str) -> list[str]:
    return sorted({word, word.upper(), word.capitalize(), f"  {word}\t"})


def invalid(env: dict) -> errors.UsageError:
    with pytest.raises(errors.UsageError) as info:
        load_policy(environ=env)
    err = info.value
    assert err.code == "ERR_INVALID_POLICY_VALUE"
    assert err.exit_code == 2
    return err


def test_defaults():
    assert load_policy(environ={}) == Policy()
    assert Policy().to_dict() == {
        "on_recorder_error": "abort",
        "require_trace": False,
        "keep_partial_trace": False,
        "log_level": "warning",
        "log_file": None,
        "json_errors": False,
        "io_capture": "proxies",
        "propagate_script_exit": False,
        "max_depth": 3,
        "max_items": 50,
        "max_string": 1000,
    }


def test_every_field_has_an_env_variable():
    assert set(policy.POLICY_ENV) == set(policy.POLICY_FIELDS)
    assert all(name.startswith("CODETRACER_") for name in policy.POLICY_ENV.values())


# --- booleans -------------------------------------------------------------------------------------

@pytest.mark.parametrize("variable, field", BOOL_FIELDS.items())
def test_boolean_variables_accept_every_word_in_any_case(variable, field):
    for word in TRUE_WORDS:
        for spelled in case_variants(word):
            assert getattr(load_policy(environ={variable: spelled}), field) is True, spelled
    for word in FALSE_WORDS:
        for spelled in case_variants(word):
            assert getattr(load_policy(environ={variable: spelled}), field) is False, spelled


@pytest.mark.parametrize("variable, value",
                         list(itertools.product(BOOL_FIELDS, ["maybe", "2", "enable", "yess"])))
def test_boolean_variables_reject_other_values(variable, value):
    err = invalid({variable: value})
    assert variable in err.message
    assert repr(value) in err.message
    for word in TRUE_WORDS + FALSE_WORDS:
        assert word in err.message
    assert err.context["name"] == variable


# --- choices --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected",
                         [("abort", "abort"), ("disable", "disable"), ("DISABLE", "disable")])
def test_on_recorder_error(value, expected):
    assert load_policy(environ={"CODETRACER_ON_RECORDER_ERROR": value}).on_recorder_error == expected


def test_on_recorder_error_invalid():
    err = invalid({"CODETRACER_ON_RECORDER_ERROR": "ignore"})
    assert "CODETRACER_ON_RECORDER_ERROR" in err.message
    assert "abort, disable" in err.message


@pytest.mark.parametrize(
    "value, expected",
    [("debug", "debug"), ("INFO", "info"), ("Warning", "warning"), ("error", "error"),
     ("critical", "critical"), ("warn", "warning"), ("trace", "debug")],
)
def test_log_level(value, expected):
    assert load_policy(environ={"CODETRACER_LOG_LEVEL": value}).log_level == expected


def test_log_level_invalid():
    err = invalid({"CODETRACER_LOG_LEVEL": "loud"})
    assert "CODETRACER_LOG_LEVEL" in err.message
    assert "debug, info, warning, error, critical" in err.message


@pytest.mark.parametrize(
    "value, expected",
    [("off", "off"), ("proxies", "proxies"), ("proxies+fd", "proxies+fd"), ("PROXIES+FD", "proxies+fd"),
     # upstream spellings
     ("proxies,fd", "proxies+fd"), ("fd", "proxies+fd"), ("proxy", "proxies"), ("0", "off"),
     ("false", "off"), ("none", "off"), ("1", "proxies"), ("on", "proxies")],
)
def test_io_capture(value, expected):
    assert load_policy(environ={"CODETRACER_CAPTURE_IO": value}).io_capture == expected


@pytest.mark.parametrize("value", ["pipes", "proxies+pipes", "+", "fd+x"])
def test_io_capture_invalid(value):
    err = invalid({"CODETRACER_CAPTURE_IO": value})
    assert "CODETRACER_CAPTURE_IO" in err.message
    assert "off, proxies, proxies+fd" in err.message


def test_log_file():
    assert load_policy(environ={"CODETRACER_LOG_FILE": "/tmp/rewind.log"}).log_file == "/tmp/rewind.log"


# --- bounds ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("variable, field", BOUND_FIELDS.items())
def test_bounds(variable, field):
    assert getattr(load_policy(environ={variable: "7"}), field) == 7
    assert getattr(load_policy(environ={variable: " 12 "}), field) == 12


@pytest.mark.parametrize("variable, value",
                         list(itertools.product(BOUND_FIELDS, ["0", "-1", "abc", "1.5", "0x10"])))
def test_bounds_invalid(variable, value):
    err = invalid({variable: value})
    assert variable in err.message
    assert "integer" in err.message


def test_max_depth_upper_limit():
    assert load_policy(environ={"CODETRACER_VALUE_MAX_DEPTH": "64"}).max_depth == 64
    err = invalid({"CODETRACER_VALUE_MAX_DEPTH": "65"})
    assert "from 1 to 64" in err.message
    assert load_policy(environ={"CODETRACER_VALUE_MAX_STRING": "100000000"}).max_string == 100_000_000


# --- general --------------------------------------------------------------------------------------

@pytest.mark.parametrize("variable", list(policy.POLICY_ENV.values()))
def test_empty_variable_counts_as_unset(variable):
    assert load_policy(environ={variable: ""}) == Policy()
    assert load_policy(environ={variable: "   "}) == Policy()


def test_unrelated_variables_are_ignored():
    assert load_policy(environ={"CODETRACER_SOMETHING_ELSE": "x", "PATH": "/bin"}) == Policy()


def test_long_values_are_shortened_in_the_message():
    err = invalid({"CODETRACER_LOG_LEVEL": "x" * 500})
    assert len(err.message) < 250


def test_precedence_defaults_env_overrides():
    env = {"CODETRACER_ON_RECORDER_ERROR": "disable", "CODETRACER_LOG_LEVEL": "debug",
           "CODETRACER_VALUE_MAX_ITEMS": "5"}
    from_env = load_policy(environ=env)
    assert (from_env.on_recorder_error, from_env.log_level, from_env.max_items) == ("disable", "debug", 5)
    assert from_env.require_trace is False  # untouched default
    explicit = load_policy({"on_recorder_error": "abort", "max_items": 9}, env)
    assert (explicit.on_recorder_error, explicit.log_level, explicit.max_items) == ("abort", "debug", 9)


def test_none_override_means_not_given():
    env = {"CODETRACER_LOG_LEVEL": "info"}
    assert load_policy({"log_level": None}, env).log_level == "info"


def test_empty_log_file_override_means_stderr():
    env = {"CODETRACER_LOG_FILE": "/tmp/x.log"}
    assert load_policy({"log_file": ""}, env).log_file is None
    assert load_policy({"log_file": Path("/tmp/y.log")}, env).log_file == "/tmp/y.log"


def test_environ_none_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("CODETRACER_JSON_ERRORS", "yes")
    assert load_policy().json_errors is True


@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), (1, True), (0, False), ("yes", True), ("OFF", False)],
)
def test_override_booleans(value, expected):
    assert load_policy({"require_trace": value}, {}).require_trace is expected


@pytest.mark.parametrize(
    "field, value",
    [("require_trace", 2), ("require_trace", "maybe"), ("max_depth", True), ("max_depth", 0),
     ("max_items", 2.5), ("log_file", 3), ("on_recorder_error", 1), ("io_capture", "pipes")],
)
def test_override_invalid_values(field, value):
    with pytest.raises(errors.UsageError) as info:
        load_policy({field: value}, {})
    assert info.value.code == "ERR_INVALID_POLICY_VALUE"
    assert f"keyword argument {field!r}" in info.value.message


def test_source_labels():
    with pytest.raises(errors.UsageError) as cli:
        load_policy({"log_level": "loud"}, {}, source="cli")
    assert "--log-level" in cli.value.message
    assert cli.value.context["name"] == "--log-level"
    with pytest.raises(errors.UsageError) as named:
        load_policy({"max_depth": 0}, {}, source="rewind.start")
    assert "rewind.start(max_depth=...)" in named.value.message
    with pytest.raises(errors.UsageError) as no_flag:
        load_policy({"max_depth": 0}, {}, source="cli")
    assert "'max_depth'" in no_flag.value.message


def test_unknown_override_key():
    with pytest.raises(errors.UsageError) as info:
        load_policy({"verbose": True}, {})
    assert info.value.code == "ERR_INVALID_POLICY_VALUE"
    for field in policy.POLICY_FIELDS:
        assert field in info.value.message


def test_policy_is_frozen_and_validated():
    p = Policy()
    with pytest.raises(AttributeError):
        p.max_depth = 5  # type: ignore[misc]
    assert p.replace(max_depth=5).max_depth == 5
    assert Policy(log_level="WARN").log_level == "warning"
    with pytest.raises(errors.UsageError) as info:
        p.replace(on_recorder_error="explode")
    assert "Policy(on_recorder_error=...)" in info.value.message


# --- env flags ------------------------------------------------------------------------------------

def test_env_flag():
    assert policy.env_flag("X_FLAG", {}) is False
    assert policy.env_flag("X_FLAG", {}, default=True) is True
    assert policy.env_flag("X_FLAG", {"X_FLAG": ""}, default=True) is True
    assert policy.env_flag("X_FLAG", {"X_FLAG": "Yes"}) is True
    assert policy.env_flag("X_FLAG", {"X_FLAG": "off"}, default=True) is False
    with pytest.raises(errors.UsageError) as info:
        policy.env_flag("X_FLAG", {"X_FLAG": "sometimes"})
    assert "X_FLAG" in info.value.message


def test_recording_disabled(monkeypatch):
    assert policy.recording_disabled({}) is False
    assert policy.recording_disabled({"CODETRACER_PYTHON_RECORDER_DISABLED": "1"}) is True
    assert policy.recording_disabled({"CODETRACER_PYTHON_RECORDER_DISABLED": "no"}) is False
    with pytest.raises(errors.UsageError) as info:
        policy.recording_disabled({"CODETRACER_PYTHON_RECORDER_DISABLED": "please"})
    assert "CODETRACER_PYTHON_RECORDER_DISABLED" in info.value.message
    monkeypatch.setenv("CODETRACER_PYTHON_RECORDER_DISABLED", "TRUE")
    assert policy.recording_disabled() is True
