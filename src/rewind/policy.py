"""Recording policy: how the recorder behaves around failures, logging, IO and value bounds.

Precedence, lowest first: built-in defaults < ``CODETRACER_*`` environment <
``configure_policy()`` < explicit arguments (CLI flags or ``start()``/``trace()``
keywords).  Invalid values raise ``UsageError`` ``ERR_INVALID_POLICY_VALUE``
naming the variable, flag or keyword and listing what is allowed.

Environment variables (empty means unset, as for Python's own ``PYTHON*`` variables):

====================================  ======================  =======================================
variable                              field                   values
====================================  ======================  =======================================
CODETRACER_ON_RECORDER_ERROR          on_recorder_error       abort | disable
CODETRACER_REQUIRE_TRACE              require_trace           boolean
CODETRACER_KEEP_PARTIAL_TRACE         keep_partial_trace      boolean
CODETRACER_LOG_LEVEL                  log_level               debug | info | warning | error | critical
CODETRACER_LOG_FILE                   log_file                a path (JSON-lines log), default stderr
CODETRACER_JSON_ERRORS                json_errors             boolean
CODETRACER_CAPTURE_IO                 io_capture              off | proxies | proxies+fd
CODETRACER_PROPAGATE_SCRIPT_EXIT      propagate_script_exit   boolean
CODETRACER_VALUE_MAX_DEPTH            max_depth               integer 1..64
CODETRACER_VALUE_MAX_ITEMS            max_items               integer >= 1
CODETRACER_VALUE_MAX_STRING           max_string              integer >= 1
====================================  ======================  =======================================

Booleans: ``1,true,t,yes,y,on`` / ``0,false,f,no,n,off``, any case.  For upstream
compatibility ``CODETRACER_CAPTURE_IO`` also takes booleans (on = proxies) and the
token lists ``proxies,fd`` / ``fd``, and the log level takes ``warn`` and ``trace``.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from rewind import errors

ON_RECORDER_ERROR_CHOICES = ("abort", "disable")
LOG_LEVEL_CHOICES = ("debug", "info", "warning", "error", "critical")
IO_CAPTURE_CHOICES = ("off", "proxies", "proxies+fd")
TRUE_WORDS = ("1", "true", "t", "yes", "y", "on")
FALSE_WORDS = ("0", "false", "f", "no", "n", "off")
MAX_DEPTH_LIMIT = 64  # the encoder recurses per level: keep it far from the recursion limit


class _PolicyFields(NamedTuple):
    on_recorder_error: str = "abort"
    require_trace: bool = False
    keep_partial_trace: bool = False
    log_level: str = "warning"
    log_file: str | None = None
    json_errors: bool = False
    io_capture: str = "proxies"
    propagate_script_exit: bool = False
    max_depth: int = 3
    max_items: int = 50
    max_string: int = 1000


class Policy(_PolicyFields):
    """The recording policy (contract section 5): immutable, and valid and normalised
    however it was built."""

    __slots__ = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> Policy:
        given = _PolicyFields(*args, **kwargs)  # a missing or unknown field: TypeError, as for any call
        return super().__new__(cls, *(
            value if value is None and name == "log_file" else _PARSERS[name](value, source=f"Policy({name}=...)")
            for name, value in zip(_PolicyFields._fields, given)))

    def replace(self, **changes: object) -> Policy:
        return Policy(**{**self._asdict(), **changes})

    def to_dict(self) -> dict[str, object]:
        return self._asdict()


POLICY_FIELDS: tuple[str, ...] = Policy._fields

# Environment variable of each field (module constants for callers that name one).
ENV_ON_RECORDER_ERROR = "CODETRACER_ON_RECORDER_ERROR"
ENV_REQUIRE_TRACE = "CODETRACER_REQUIRE_TRACE"
ENV_KEEP_PARTIAL_TRACE = "CODETRACER_KEEP_PARTIAL_TRACE"
ENV_LOG_LEVEL = "CODETRACER_LOG_LEVEL"
ENV_LOG_FILE = "CODETRACER_LOG_FILE"
ENV_JSON_ERRORS = "CODETRACER_JSON_ERRORS"
ENV_CAPTURE_IO = "CODETRACER_CAPTURE_IO"
ENV_PROPAGATE_SCRIPT_EXIT = "CODETRACER_PROPAGATE_SCRIPT_EXIT"
ENV_VALUE_MAX_DEPTH = "CODETRACER_VALUE_MAX_DEPTH"
ENV_VALUE_MAX_ITEMS = "CODETRACER_VALUE_MAX_ITEMS"
ENV_VALUE_MAX_STRING = "CODETRACER_VALUE_MAX_STRING"
# Not policy fields, but boolean switches the CLI and the API read with env_flag().
ENV_RECORDER_DISABLED = "CODETRACER_PYTHON_RECORDER_DISABLED"

POLICY_ENV: dict[str, str] = {
    "on_recorder_error": ENV_ON_RECORDER_ERROR,
    "require_trace": ENV_REQUIRE_TRACE,
    "keep_partial_trace": ENV_KEEP_PARTIAL_TRACE,
    "log_level": ENV_LOG_LEVEL,
    "log_file": ENV_LOG_FILE,
    "json_errors": ENV_JSON_ERRORS,
    "io_capture": ENV_CAPTURE_IO,
    "propagate_script_exit": ENV_PROPAGATE_SCRIPT_EXIT,
    "max_depth": ENV_VALUE_MAX_DEPTH,
    "max_items": ENV_VALUE_MAX_ITEMS,
    "max_string": ENV_VALUE_MAX_STRING,
}

# CLI flag of each field (contract section 1); used to label errors when source="cli".
POLICY_FLAGS: dict[str, str] = {
    "on_recorder_error": "--on-recorder-error",
    "require_trace": "--require-trace",
    "keep_partial_trace": "--keep-partial-trace",
    "log_level": "--log-level",
    "log_file": "--log-file",
    "json_errors": "--json-errors",
    "io_capture": "--io-capture",
    "propagate_script_exit": "--propagate-script-exit",
}


# --- value parsers ------------------------------------------------------------------------------

def _invalid(label: str, value: object, expected: str) -> errors.UsageError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return errors.usage(
        errors.ERR_INVALID_POLICY_VALUE,
        f"invalid value {shown} for {label}; expected {expected}",
        name=label,
        value=shown,
    )


_BOOL_EXPECTED = f"a boolean: {', '.join(TRUE_WORDS)} / {', '.join(FALSE_WORDS)} (any case)"


def parse_bool(value: object, *, source: str) -> bool:
    """A boolean from ``True``/``False``, ``0``/``1`` or one of the boolean words.

    ``source`` names where the value came from (variable, flag or keyword) for the error.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise _invalid(source, value, _BOOL_EXPECTED)


def parse_choice(value: object, choices: tuple[str, ...], *, source: str,
                 aliases: Mapping[str, str] | None = None) -> str:
    """One of ``choices`` (case-insensitive); ``aliases`` map extra spellings to a choice."""
    if isinstance(value, str):
        word = value.strip().lower()
        if word in choices:
            return word
        if aliases and word in aliases:
            return aliases[word]
    raise _invalid(source, value, "one of " + ", ".join(choices))


def parse_positive_int(value: object, *, source: str, maximum: int | None = None) -> int:
    """An integer >= 1 (and <= ``maximum``) from an int or a decimal string."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = int(value.strip(), 10)
        except ValueError:
            number = None
    if number is not None and number >= 1 and (maximum is None or number <= maximum):
        return number
    expected = f"an integer from 1 to {maximum}" if maximum else "a positive integer"
    raise _invalid(source, value, expected)


def parse_max_depth(value: object, *, source: str) -> int:
    return parse_positive_int(value, source=source, maximum=MAX_DEPTH_LIMIT)


_LOG_LEVEL_ALIASES = {"warn": "warning", "trace": "debug"}


def parse_log_level(value: object, *, source: str) -> str:
    return parse_choice(value, LOG_LEVEL_CHOICES, source=source, aliases=_LOG_LEVEL_ALIASES)


def parse_on_recorder_error(value: object, *, source: str) -> str:
    return parse_choice(value, ON_RECORDER_ERROR_CHOICES, source=source)


_IO_OFF_WORDS = frozenset(FALSE_WORDS) | {"disable", "disabled", "none"}
_IO_ON_WORDS = frozenset(TRUE_WORDS) | {"enable", "enabled"}
_IO_PROXY_TOKENS = frozenset({"proxies", "proxy"})
_IO_FD_TOKENS = frozenset({"fd", "mirror", "fallback"})


def parse_io_capture(value: object, *, source: str) -> str:
    """``off``, ``proxies`` or ``proxies+fd``; also upstream's spellings (booleans, ``proxies,fd``)."""
    if isinstance(value, bool):
        return "proxies" if value else "off"
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _IO_OFF_WORDS:
            return "off"
        if word in _IO_ON_WORDS:
            return "proxies"
        tokens = [t.strip() for t in word.replace(",", "+").split("+") if t.strip()]
        if tokens and all(t in _IO_PROXY_TOKENS | _IO_FD_TOKENS for t in tokens):
            # fd capture always comes with the proxies, as upstream.
            return "proxies+fd" if any(t in _IO_FD_TOKENS for t in tokens) else "proxies"
    raise _invalid(source, value, "one of " + ", ".join(IO_CAPTURE_CHOICES))


def parse_log_file(value: object, *, source: str) -> str | None:
    """A path, or None (stderr) for an empty string."""
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        if isinstance(path, str):
            return path if path.strip() else None
    raise _invalid(source, value, "a file path (an empty string means stderr)")


_PARSERS: dict[str, Callable[..., Any]] = {
    "on_recorder_error": parse_on_recorder_error,
    "require_trace": parse_bool,
    "keep_partial_trace": parse_bool,
    "log_level": parse_log_level,
    "log_file": parse_log_file,
    "json_errors": parse_bool,
    "io_capture": parse_io_capture,
    "propagate_script_exit": parse_bool,
    "max_depth": parse_max_depth,
    "max_items": parse_positive_int,
    "max_string": parse_positive_int,
}


def _label(name: str, source: str) -> str:
    if source == "cli" and name in POLICY_FLAGS:
        return POLICY_FLAGS[name]
    if source in ("api", "cli"):
        return f"keyword argument {name!r}"
    return f"{source}({name}=...)"


def coerce_field(name: str, value: object, *, source: str = "api") -> object:
    """Validate and normalise one policy value.

    ``source`` labels errors: ``"cli"`` names the field's flag (``--log-level``),
    ``"api"`` names the keyword, any other string is used as a caller name
    (``source="rewind.start"`` -> ``rewind.start(log_level=...)``).
    """
    if name not in _PARSERS:
        raise errors.usage(
            errors.ERR_INVALID_POLICY_VALUE,
            f"unknown policy key {name!r}; valid keys: {', '.join(POLICY_FIELDS)}",
            name=name,
        )
    return _PARSERS[name](value, source=_label(name, source))


def coerce_overrides(overrides: Mapping[str, object] | None, *, source: str = "api") -> dict[str, object]:
    """Validated overrides; a None value means "not given" and is left out.

    To send logs to stderr over a ``CODETRACER_LOG_FILE``, pass ``log_file=""``.
    """
    result: dict[str, object] = {}
    for name, value in (overrides or {}).items():
        if value is None:
            if name not in _PARSERS:
                coerce_field(name, value, source=source)  # raises: unknown key
            continue
        result[name] = coerce_field(name, value, source=source)
    return result


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """The policy values the environment sets, validated; unset and empty variables are skipped."""
    env = os.environ if environ is None else environ
    result: dict[str, object] = {}
    for name, variable in POLICY_ENV.items():
        raw = env.get(variable)
        if raw is None or not raw.strip():
            continue
        result[name] = _PARSERS[name](raw, source=variable)
    return result


def env_flag(name: str, environ: Mapping[str, str] | None = None, *, default: bool = False) -> bool:
    """A boolean environment variable: unset or empty -> ``default``, invalid -> UsageError."""
    env = os.environ if environ is None else environ
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    return parse_bool(raw, source=name)


def recording_disabled(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``CODETRACER_PYTHON_RECORDER_DISABLED`` asks to run without recording."""
    return env_flag(ENV_RECORDER_DISABLED, environ)


def load_policy(overrides: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None,
                *, source: str = "api") -> Policy:
    """Built-in defaults < environment (``os.environ`` when None) < explicit overrides."""
    values = env_overrides(environ)
    values.update(coerce_overrides(overrides, source=source))
    return Policy(**values)


# --- the process policy -------------------------------------------------------------------------
# defaults < env (as last read) < configure_policy() overrides.  The environment is
# read on first use, by configure_policy_from_env(), and by resolve_policy() (each start()).

_lock = threading.Lock()
_env_policy: Policy | None = None
_configured: dict[str, object] = {}


def _process_policy() -> Policy:
    global _env_policy
    if _env_policy is None:
        _env_policy = load_policy(environ=os.environ)
    return _env_policy.replace(**_configured)


def configure_policy(**overrides: object) -> Policy:
    """Set process-wide policy values, above the environment and below explicit arguments.

    A None value removes an earlier configure_policy() setting for that key.
    Unknown keys and invalid values raise UsageError ERR_INVALID_POLICY_VALUE, and so
    does an invalid CODETRACER_* variable when the environment is read for the first time.
    """
    validated = coerce_overrides(overrides, source="configure_policy")
    cleared = [name for name, value in overrides.items() if value is None]
    with _lock:
        for name in cleared:
            _configured.pop(name, None)
        _configured.update(validated)
        return _process_policy()


def configure_policy_from_env(environ: Mapping[str, str] | None = None) -> Policy:
    """Re-read the ``CODETRACER_*`` policy variables; configure_policy() values stay on top."""
    global _env_policy
    fresh = load_policy(environ=os.environ if environ is None else environ)
    with _lock:
        _env_policy = fresh
        return _process_policy()


def resolve_policy(overrides: Mapping[str, object] | None = None, *, source: str = "api",
                   environ: Mapping[str, str] | None = None) -> Policy:
    """The policy for a new session: refresh from env, then configure_policy(), then ``overrides``.

    This is what ``start()``/``trace()`` (``source="api"``) and the CLI (``source="cli"``) call.
    """
    explicit = coerce_overrides(overrides, source=source)
    return configure_policy_from_env(environ).replace(**explicit)


def current_policy() -> Policy:
    """The process policy: defaults < environment (as last read) < configure_policy()."""
    with _lock:
        return _process_policy()


def policy_snapshot() -> dict[str, object]:
    """The process policy as a plain dict."""
    return current_policy().to_dict()


def reset_policy() -> None:
    """Forget configure_policy() values and the cached environment (mainly for tests)."""
    global _env_policy
    with _lock:
        _env_policy = None
        _configured.clear()
