"""Recording child processes: `rewind --follow-children ...` / `CODETRACER_FOLLOW_CHILDREN=1`.

Layout (docs/auto-start.md): the children of the trace `T` are recorded into `T.children/PID`,
beside `T` (a trace directory holds nothing but trace files, and it is renamed into place
when finished); a child's own children go into `T.children/PID.children/PID2`, and so on.

- Spawned Python processes (`subprocess`, `os.exec*`, multiprocessing `spawn`): the parent
  exports `CODETRACER_TRACE=T.children/{pid}` and `REWIND_CHILD` (JSON: the parent's
  identity and recording settings) into `os.environ`; rewind's start-up hook
  (autostart.py, run from rewind-autostart.pth) starts a recording in every new Python
  process that can import rewind.
- `fork` (`os.fork`, multiprocessing `fork`): an `os.register_at_fork` hook detaches the
  inherited session in the child and starts a fresh one there.  A multiprocessing child ends
  through `os._exit`, which the session finishes the trace for (exits.py); a terminated
  pool worker is finished by the session's SIGTERM handler.
- Every child appends one line to `T.children/.rewind-children.jsonl` when its recording
  starts; when `T` is finished its metadata lists them under `children` (complete or not),
  and each child's metadata names its parent under `parent`.

Nothing here raises into the program: a child that cannot be recorded runs unrecorded,
with one line on stderr.
"""
from __future__ import annotations

import json
import os
import sys

ENV_FOLLOW_CHILDREN = "CODETRACER_FOLLOW_CHILDREN"
ENV_TRACE = "CODETRACER_TRACE"
ENV_CHILD = "REWIND_CHILD"
SUFFIX = ".children"
REGISTRY = ".rewind-children.jsonl"
PID_PLACEHOLDER = "{pid}"

_follow: _Follow | None = None
_fork_hook_registered = False


def children_dir(trace_dir: str) -> str:
    return os.path.abspath(trace_dir) + SUFFIX


def _abs_spec(spec: str) -> str:
    """A filter spec with each `::` part made absolute when it names an existing file, so a
    child that changes directory still finds it."""
    parts = os.fspath(spec).split("::")
    return "::".join(os.path.abspath(p) if p.strip() and os.path.exists(p) else p for p in parts)


def settings_of(session) -> dict:
    """What a child records with: the same format, filters, framework and policy."""
    policy = {k: v for k, v in session.policy.to_dict().items() if v is not None}
    if policy.get("log_file"):
        policy["log_file"] = os.path.abspath(policy["log_file"])
    return {
        "format": session.format,
        "trace_filter": [_abs_spec(s) for s in session.trace_filter],
        "framework": session.framework,
        "policy": policy,
    }


def inherited() -> dict | None:
    """The settings a parent exported for this process (REWIND_CHILD), or None."""
    raw = os.environ.get(ENV_CHILD)
    if not raw:
        return None
    try:
        settings = json.loads(raw)
    except ValueError:
        return None
    return settings if isinstance(settings, dict) and isinstance(settings.get("parent"), dict) else None


class _Follow:
    """The session of this process whose children are recorded."""

    def __init__(self, session, settings: dict):
        self.session = session
        self.pid = os.getpid()
        self.root = children_dir(session.target)
        self.active = True
        self.child_settings = dict(settings)
        self.child_settings["root"] = self.root
        self.child_settings["parent"] = {
            "pid": self.pid,
            "recording_id": session.recording_id,
            "trace_dir": session.target,
            "program": session.program,
            "args": list(session.args),
            "toplevel_path": session.toplevel_path,
        }
        self.exported: dict[str, str] = {}
        self.saved: dict[str, str | None] = {}

    def export(self) -> None:
        self.exported = {ENV_TRACE: os.path.join(self.root, PID_PLACEHOLDER),
                         ENV_CHILD: json.dumps(self.child_settings, separators=(",", ":"))}
        for name, value in self.exported.items():
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value

    def unexport(self) -> None:
        for name, value in self.exported.items():
            if os.environ.get(name) != value:
                continue  # the program changed it since: leave its value alone
            old = self.saved.get(name)
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
        self.exported = {}

    def metadata_hook(self, meta: dict) -> None:
        """Runs while the parent's trace is finished: stop following, list the children."""
        global _follow
        self.active = False
        if _follow is self:
            _follow = None
        try:
            self.unexport()
        except Exception:  # noqa: BLE001, S110 - the environment is the program's; never fail here
            pass
        try:
            meta["children"] = list_children(self.root, self.session.recording_id)
        except Exception:  # noqa: BLE001 - an unreadable registry lists nothing
            meta["children"] = []


def list_children(root: str, recording_id: str) -> list[dict]:
    """The children that registered under `root` for the recording `recording_id`."""
    try:
        with open(os.path.join(root, REGISTRY), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a child killed mid-write
        if not isinstance(entry, dict) or entry.get("parent") != recording_id:
            continue
        trace_dir = entry.get("trace_dir", "")
        meta = _read_json(os.path.join(trace_dir, "trace_metadata.json"))
        complete = bool(meta) and meta.get("recording_id") == entry.get("recording_id")
        item = {"pid": entry.get("pid"), "trace_dir": trace_dir, "recording_id": entry.get("recording_id"),
                "start": entry.get("start"), "complete": complete}
        if complete:
            item["process_exit_status"] = meta.get("process_exit_status")
            if meta.get("partial"):
                item["partial"] = True
        found.append(item)
    return found


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _only_traces(root: str) -> bool:
    from .session import TRACE_FILES
    allowed = set(TRACE_FILES) | {REGISTRY}
    for _dirpath, _dirnames, filenames in os.walk(root):
        if any(name not in allowed for name in filenames):
            return False
    return True


def _clear_previous(root: str) -> None:
    """A new recording into T replaces the children recorded with the previous T, but a
    children directory holding anything else than traces is left alone."""
    if os.path.isdir(root) and not os.path.islink(root) and _only_traces(root):
        import shutil  # here, not at start: most recordings start no children
        shutil.rmtree(root, ignore_errors=True)


def follow(session, settings: dict | None = None) -> None:
    """Record the child processes of `session` (running in this process) from now on.
    Call right after the session started.  Never raises."""
    global _follow
    try:
        if settings is None:
            _clear_previous(children_dir(session.target))
        state = _Follow(session, settings_of(session) if settings is None else settings)
        state.export()
        _follow = state
        _register_fork_hook()
        session.metadata_hooks.append(state.metadata_hook)
    except Exception as exc:  # noqa: BLE001 - the program runs on, its children unrecorded
        _warn("cannot follow child processes: %s: %s" % (type(exc).__name__, exc))


def adopt(session, settings: dict, start: str) -> None:
    """In a child: name the parent in this session's metadata and register with the parent."""
    parent = settings.get("parent", {})

    def add_parent(meta: dict) -> None:
        meta["parent"] = {"pid": parent.get("pid"), "recording_id": parent.get("recording_id"),
                          "trace_dir": parent.get("trace_dir"), "start": start}

    session.metadata_hooks.append(add_parent)
    line = json.dumps({"parent": parent.get("recording_id"), "pid": os.getpid(), "trace_dir": session.target,
                       "recording_id": session.recording_id, "start": start}, separators=(",", ":")) + "\n"
    try:
        os.makedirs(settings["root"], exist_ok=True)
        fd = os.open(os.path.join(settings["root"], REGISTRY), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))  # one short O_APPEND write: lines never interleave
        finally:
            os.close(fd)
    except OSError as exc:
        _warn("cannot register this child with its parent's trace: %s" % exc)


def _register_fork_hook() -> None:
    global _fork_hook_registered
    if not _fork_hook_registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook_registered = True


def _after_fork_in_child() -> None:
    global _follow
    state = _follow
    if state is None or not state.active or state.pid == os.getpid():
        return
    _follow = None
    try:
        # Never write into the parent's trace from here (idempotent: the session's own
        # fork hook may have run first).
        state.session._after_fork_in_child()
    except Exception:  # noqa: BLE001, S110
        pass
    try:
        from . import autostart
        autostart.start_child(state.child_settings, start="fork")
    except BaseException as exc:  # noqa: BLE001 - nothing in the child may fail because of us
        _warn("cannot record the forked child: %s: %s" % (type(exc).__name__, exc))


def _warn(message: str) -> None:
    try:
        from . import diagnostics
        diagnostics.logger.warning(message)
    except Exception:  # noqa: BLE001
        try:
            sys.__stderr__.write("rewind: %s\n" % message)
        except Exception:  # noqa: BLE001, S110
            pass
