"""The process-wide policy: configure_policy, configure_policy_from_env, resolve_policy, snapshot."""
from __future__ import annotations

import pytest

from rewind import errors, policy


@pytest.fixture(autouse=True)
def clean_policy(monkeypatch):
    for variable in policy.POLICY_ENV.values():
        monkeypatch.delenv(variable, raising=False)
    policy.reset_policy()
    yield
    policy.reset_policy()


def test_snapshot_starts_from_defaults_and_env(monkeypatch):
    assert policy.policy_snapshot() == policy.Policy().to_dict()
    policy.reset_policy()
    monkeypatch.setenv("CODETRACER_ON_RECORDER_ERROR", "disable")
    assert policy.policy_snapshot()["on_recorder_error"] == "disable"


def test_configure_policy_sets_values():
    result = policy.configure_policy(on_recorder_error="disable", keep_partial_trace=True, max_items=10)
    assert (result.on_recorder_error, result.keep_partial_trace, result.max_items) == ("disable", True, 10)
    snap = policy.policy_snapshot()
    assert snap["on_recorder_error"] == "disable" and snap["keep_partial_trace"] is True
    assert snap["max_items"] == 10 and snap["log_level"] == "warning"
    assert policy.current_policy() == result


def test_configure_policy_accumulates_and_none_clears():
    policy.configure_policy(require_trace=True)
    policy.configure_policy(json_errors="yes")
    snap = policy.policy_snapshot()
    assert snap["require_trace"] is True and snap["json_errors"] is True
    policy.configure_policy(require_trace=None)
    assert policy.policy_snapshot()["require_trace"] is False


def test_configure_policy_unknown_key():
    with pytest.raises(errors.UsageError) as info:
        policy.configure_policy(on_error="disable")
    err = info.value
    assert err.code == "ERR_INVALID_POLICY_VALUE"
    assert "'on_error'" in err.message
    for field in policy.POLICY_FIELDS:
        assert field in err.message


def test_configure_policy_invalid_value_changes_nothing():
    with pytest.raises(errors.UsageError) as info:
        policy.configure_policy(require_trace=True, max_depth=0)
    assert "configure_policy(max_depth=...)" in info.value.message
    assert policy.policy_snapshot()["require_trace"] is False


def test_configured_values_win_over_env(monkeypatch):
    monkeypatch.setenv("CODETRACER_LOG_LEVEL", "debug")
    monkeypatch.setenv("CODETRACER_JSON_ERRORS", "1")
    policy.configure_policy(log_level="error")
    snap = policy.configure_policy_from_env().to_dict()
    assert snap["log_level"] == "error"  # configure_policy() stays on top
    assert snap["json_errors"] is True


def test_configure_policy_from_env_rereads(monkeypatch):
    assert policy.policy_snapshot()["io_capture"] == "proxies"
    monkeypatch.setenv("CODETRACER_CAPTURE_IO", "off")
    assert policy.policy_snapshot()["io_capture"] == "proxies"  # cached until re-read
    assert policy.configure_policy_from_env().io_capture == "off"
    assert policy.policy_snapshot()["io_capture"] == "off"
    fd = policy.configure_policy_from_env({"CODETRACER_CAPTURE_IO": "proxies+fd"})
    assert fd.io_capture == "proxies+fd"


def test_configure_policy_from_env_invalid(monkeypatch):
    monkeypatch.setenv("CODETRACER_KEEP_PARTIAL_TRACE", "perhaps")
    with pytest.raises(errors.UsageError) as info:
        policy.configure_policy_from_env()
    assert "CODETRACER_KEEP_PARTIAL_TRACE" in info.value.message


def test_resolve_policy_precedence(monkeypatch):
    monkeypatch.setenv("CODETRACER_ON_RECORDER_ERROR", "disable")
    monkeypatch.setenv("CODETRACER_LOG_LEVEL", "info")
    monkeypatch.setenv("CODETRACER_VALUE_MAX_DEPTH", "4")
    policy.configure_policy(log_level="error", max_items=7)
    resolved = policy.resolve_policy({"max_depth": 9, "require_trace": None})
    assert resolved.on_recorder_error == "disable"  # env
    assert resolved.log_level == "error"  # configure_policy over env
    assert resolved.max_items == 7  # configure_policy
    assert resolved.max_depth == 9  # explicit over env
    assert resolved.require_trace is False  # None = not given
    # Explicit overrides are for that session only.
    assert policy.policy_snapshot()["max_depth"] == 4


def test_resolve_policy_refreshes_env_every_time(monkeypatch):
    assert policy.resolve_policy().keep_partial_trace is False
    monkeypatch.setenv("CODETRACER_KEEP_PARTIAL_TRACE", "on")
    assert policy.resolve_policy().keep_partial_trace is True


def test_resolve_policy_labels(monkeypatch):
    with pytest.raises(errors.UsageError) as cli:
        policy.resolve_policy({"on_recorder_error": "x"}, source="cli")
    assert "--on-recorder-error" in cli.value.message
    with pytest.raises(errors.UsageError) as api:
        policy.resolve_policy({"on_recorder_error": "x"})
    assert "keyword argument 'on_recorder_error'" in api.value.message


def test_reset_policy():
    policy.configure_policy(json_errors=True)
    policy.reset_policy()
    assert policy.policy_snapshot() == policy.Policy().to_dict()
