"""The filter engine: a chain of TOML filter files -> one ScopeDecision per code object.

    chain = build_chain(specs, script_dir=..., framework=None, environ=os.environ)
    decision = chain.decide(module="pkg.mod", qualname="Cls.meth", filename="/abs/path.py")
    decision.trace                       # record this code object at all
    decision.value_action("arg", "password")   # "allow" | "redact" | "drop" (cached)
    chain.provenance()                   # [{"name", "version", "path", "sha256"}]
    chain.io                             # None or {"capture": bool, "streams": [...]}

Layout: selectors.py (grammar), globmatch.py (glob -> regex), schema.py (TOML loading and
validation), model.py (compiled form), chain.py (composition, discovery, decisions),
explainer.py (`rewind filter explain`), builtin/ (the packaged builtin filters).
The language is documented for users in docs/filters.md.
"""
from __future__ import annotations

from .chain import (
    BUILTIN_FILTERS,
    ENV_TRACE_FILTER,
    FilterChain,
    ScopeDecision,
    build_chain,
    compose,
    discover_project_filter,
    is_synthetic_filename,
    load_builtin,
    split_specs,
)
from .model import FilterFile
from .schema import ERR_FILTER_NOT_FOUND, ERR_INVALID_FILTER, load_filter_file, parse_filter
from .selectors import MATCH_TYPES, SCOPE_KINDS, VALUE_KINDS, Selector, parse_selector

__all__ = [
    "BUILTIN_FILTERS",
    "ENV_TRACE_FILTER",
    "ERR_FILTER_NOT_FOUND",
    "ERR_INVALID_FILTER",
    "MATCH_TYPES",
    "SCOPE_KINDS",
    "VALUE_KINDS",
    "FilterChain",
    "FilterFile",
    "ScopeDecision",
    "Selector",
    "build_chain",
    "compose",
    "discover_project_filter",
    "explain",
    "format_explanation",
    "is_synthetic_filename",
    "load_builtin",
    "load_filter_file",
    "parse_filter",
    "parse_selector",
    "resolve_target",
    "split_specs",
]

_EXPLAIN_NAMES = ("explain", "format_explanation", "resolve_target")


def __getattr__(name: str):
    # explainer.py is only for `rewind filter explain`: a recording does not import it.
    if name in _EXPLAIN_NAMES:
        from . import explainer

        return getattr(explainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
