"""The optional C accelerator of the per-line hot path (docs/accelerator.md).

Two C extensions, built by setup.py when a compiler and the Python headers are there:
`_speedups` does the work of `Recorder.line` and, for sys.monitoring, of the LINE callback;
`_nodes` is the encoder's node check (encoder._unchanged / _stale_positions).  Both write
byte-identical traces.  The C core is the two together; without them the pure-Python core
runs.  `REWIND_CORE` picks:

- unset: the C core when the extension imports, else the pure-Python core;
- `python`: the pure-Python core, even when the extension is built;
- `c`: the C core; an error (before the program runs) when it is not built.
"""
from __future__ import annotations

import os
import zlib
from types import ModuleType

from .. import errors

ENV_VAR = "REWIND_CORE"
CORES = ("python", "c")


_loaded: tuple[ModuleType | None, str] | None = None


def _load() -> tuple[ModuleType | None, str]:
    """The `_speedups` module (with `_nodes` and `_cbor` importable too), or None and why not."""
    global _loaded
    if _loaded is None:
        try:
            from . import _cbor, _nodes, _speedups  # noqa: F401 - all must import; node_check() uses _nodes
        except ImportError as exc:
            _loaded = None, str(exc)
        else:
            stale = [_stale_reason(module) for module in (_speedups, _nodes, _cbor)]
            _loaded = (None, "; ".join(filter(None, stale))) if any(stale) else (_speedups, "")
    return _loaded


def _stale_reason(module: ModuleType) -> str:
    """Why `module` must not be used ("" when it may): its C source next to it (an editable
    install or a checkout) changed since it was built, so its functions may no longer be the
    ones this Python code calls."""
    built = getattr(module, "SOURCE_CRC", 0)
    source = os.path.join(os.path.dirname(module.__file__ or ""), module.__name__.rpartition(".")[2] + ".c")
    if not built or not os.path.isfile(source):
        return ""
    try:
        with open(source, "rb") as f:
            current = zlib.crc32(f.read())
    except OSError:
        return ""
    if current == built:
        return ""
    return "%s was built from an older %s (rebuild it: pip install -e .)" % (os.path.basename(module.__file__ or ""),
                                                                           os.path.basename(source))


def node_check(empty: object) -> tuple:
    """The C versions of the encoder's (_unchanged, _stale_positions), for
    ValueEncoder.use_node_check; call only once select_core() returned the C core."""
    from ..encoder import Node
    from . import _nodes
    _nodes.configure(empty, Node)
    return _nodes.unchanged, _nodes.stale_positions


def cbor_transcoder() -> ModuleType | None:
    """The C JSON-event-to-CBOR transcoder (the `_cbor` module: `events(text)`, `forget()`)
    when the C core is selected, else None: writer/binary_writer.py then converts in Python
    (the same bytes)."""
    if select_core()[0] != "c":
        return None
    from . import _cbor
    return _cbor


def select_core() -> tuple[str, ModuleType | None]:
    """(core name, extension module or None) as REWIND_CORE asks; raises a UsageError for
    a bad value and an EnvironmentError for `c` without the extension."""
    name = os.environ.get(ENV_VAR) or ""
    if name and name not in CORES:
        raise errors.usage("ERR_INVALID_POLICY_VALUE", "unknown recorder core",
                           variable=ENV_VAR, value=name, allowed=", ".join(CORES))
    if name == "python":
        return "python", None
    module, reason = _load()
    if module is not None:
        return "c", module
    if name == "c":
        raise errors.environment("ERR_MISSING_EXTRA", "REWIND_CORE=c asks for the C accelerator, which is not built "
                                 "in this install (reinstall with a C compiler and the Python headers, or unset "
                                 "REWIND_CORE)", variable=ENV_VAR, value=name, reason=reason)
    return "python", None


def available() -> bool:
    """True when the C extensions are built and import."""
    return _load()[0] is not None


def core_name() -> str:
    """The core a recording started now would use: "c" or "python"."""
    return select_core()[0]
