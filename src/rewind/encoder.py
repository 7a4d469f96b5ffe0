"""Value encoder: Python objects -> CodeTracer `Value` JSON text (trace-format.md section 3).

Encoding goes straight to JSON text, one small string per value, because the recorder
snapshots every visible variable at every step and building dicts for `json.dumps` costs
several times more.  Types are interned through a `TypeTable`, which emits the `Type`
definition event the first time a type is used (define before use).

Recording never calls user code other than `__repr__` of otherwise unknown objects:
user-class instances are read through `__dict__` and slot descriptors, containers through
the base-class C methods, so an overridden `__iter__`, `__getattr__` or `items` never runs.

Re-encoding: the recorder writes every variable at every step, and most values did not
change since the last step.  Each container or object encoding leaves a `Node` behind (what
it showed, the text of each element, and the nodes of elements that are containers); given
the node of the same object's last encoding as a hint, the encoder checks each element by
identity and re-encodes only the elements that changed, at any depth.
"""
from __future__ import annotations

import binascii
import enum
import json
import sys
import time
import types
import weakref
from collections import deque
from itertools import chain, islice
from operator import is_
from typing import Callable

# The C-accelerated JSON string escaper (with quotes), non-ASCII kept as is.  Lone
# surrogates are replaced when the writer encodes the text to UTF-8.
_escape: Callable[[str], str] = json.encoder.c_encode_basestring or json.encoder.py_encode_basestring

I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1

# Type kinds (trace-format.md section 3).
KIND_SEQ = 0
KIND_HASHSET = 2
KIND_STRUCT = 6
KIND_INT = 7
KIND_FLOAT = 8
KIND_STRING = 9
KIND_BOOL = 12
KIND_RAW = 16
KIND_ENUM = 17
KIND_ERROR = 24
KIND_FUNCTION = 25
KIND_TYPEVALUE = 26
KIND_TUPLE = 27
KIND_NONE = 30
KIND_ANY = 32

NONE_TEXT = '{"kind":"None","type_id":0}'

# A repr slower than this marks its type: later values of it are shown without calling repr.
SLOW_REPR_SECONDS = 0.05

_STDLIB_TOP = frozenset(sys.stdlib_module_names) | {"builtins", "__builtin__"}
# Immutable stdlib types (by module and name: importing them would change the program's
# sys.modules) whose repr depends on nothing else: their text is reused as long as the
# variable holds the same object.  Other reprs are computed afresh at every step.
_STABLE_REPR_NAMES = frozenset({
    ("builtins", "range"), ("builtins", "complex"), ("re", "Pattern"), ("datetime", "date"),
    ("datetime", "timedelta"), ("datetime", "timezone"), ("decimal", "Decimal"), ("fractions", "Fraction"),
    ("uuid", "UUID"), ("ipaddress", "IPv4Address"), ("ipaddress", "IPv6Address"),
    ("ipaddress", "IPv4Network"), ("ipaddress", "IPv6Network"),
    *((module, name) for module in ("pathlib", "pathlib._local")  # 3.13 moved the classes
      for name in ("PurePath", "PurePosixPath", "PureWindowsPath", "Path", "PosixPath", "WindowsPath")),
})
# Stdlib types whose repr depends only on the object's identity, its exact class and one
# attribute that is a str: (module, qualname) -> that attribute.  Their repr is taken again
# only when the attribute changes (see _attribute_repr_node); markdown's documents are
# trees of these, which every step of its processors shows.
_REPR_INPUT_NAMES = {
    ("xml.etree.ElementTree", "Element"): "tag",  # <Element 'p' at 0x...> (C and Python versions)
}
# The base `type` descriptors: a metaclass cannot put user code behind them.
_type_module = type.__dict__["__module__"].__get__
_type_qualname = type.__dict__["__qualname__"].__get__
_FUNCTION_TYPES = (types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
                   types.WrapperDescriptorType, types.MethodWrapperType, types.ClassMethodDescriptorType)


class TypeTable:
    """Interns types; `emit` receives the `Type` definition text (without separator)."""

    def __init__(self, emit: Callable[[str], None]):
        self._emit = emit
        self._ids: dict[tuple, int] = {}
        # Type 0 must be the None type (trace-format.md rule: default return value).
        self.intern(KIND_NONE, "None")

    def intern(self, kind: int, lang_type: str, specific_info: str = '{"kind":"None"}') -> int:
        key = (kind, lang_type, specific_info)
        tid = self._ids.get(key)
        if tid is None:
            # Written before it is known: an id is never handed out without its event.
            tid = len(self._ids)
            self._emit('{"Type":{"kind":%d,"lang_type":%s,"specific_info":%s}}'
                       % (kind, _escape(lang_type), specific_info))
            self._ids[key] = tid
        return tid

    def __len__(self) -> int:
        return len(self._ids)


def _type_name(tp: type) -> str:
    name = tp.__qualname__ if isinstance(getattr(tp, "__qualname__", None), str) else tp.__name__
    return name


_OBJECT_REPR = object.__dict__["__repr__"]
_type_mro = type.__dict__["__mro__"].__get__
_type_dict = type.__dict__["__dict__"].__get__


def _has_default_repr(tp: type) -> bool:
    """True when `repr` of an instance is object.__repr__ (`<mod.Name object at 0x...>`),
    which depends on nothing but the object's class and identity.  Looked up along the MRO
    through the base `type` descriptors, so no metaclass code runs."""
    for klass in _type_mro(tp):
        attrs = _type_dict(klass)
        if "__repr__" in attrs:
            return attrs["__repr__"] is _OBJECT_REPR
    return False


def _is_stdlib_type(tp: type) -> bool:
    module = tp.__dict__.get("__module__") if isinstance(tp.__dict__.get("__module__"), str) else "builtins"
    return module.partition(".")[0] in _STDLIB_TOP


def _slot_descriptors(tp: type) -> list[tuple[str, object]]:
    """(name, member descriptor) for every `__slots__` entry along the MRO."""
    found = []
    seen = set()
    for klass in tp.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for name in slots:
            if name in ("__dict__", "__weakref__") or name in seen:
                continue
            descriptor = klass.__dict__.get(name)
            if isinstance(descriptor, types.MemberDescriptorType):
                seen.add(name)
                found.append((name, descriptor))
    return found


class ValueEncoder:
    """Encodes values as JSON `Value` text within the policy's bounds.

    `attr_action(name) -> "allow" | "redact" | "drop"` applies the filter's `attr` patterns to
    the fields of Struct values, and `attr_scope()` names the rules it applies at the moment
    (the same object: the same decisions).  Counters of redacted/dropped attributes are kept here.
    """

    def __init__(self, types_: TypeTable, *, max_depth: int = 3, max_items: int = 50,
                 max_string: int = 1000, attr_action: Callable[[str], str] | None = None,
                 attr_scope: Callable[[], object] | None = None):
        self.types = types_
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string = max_string
        self.attr_action = attr_action or (lambda name: "allow")
        self.attr_scope = attr_scope or (lambda: None)
        self.attr_redactions = 0
        self.attr_drops = 0
        self._by_type: dict[type, Callable[[object, int], str]] = {}
        self._type_ids: dict[object, int] = {}
        self._struct_types: dict[tuple, int] = {}
        self._slow_repr_types: set[type] = set()
        self._stable_repr_types: set[type] = set()
        # type -> node_of(value, repr text): the Node of a repr that changes only with what
        # that Node checks, or None (see _attribute_repr_node, _attribute_holder_node)
        self._repr_nodes: dict[type, Callable] = {}
        self._namedtuple_readers: dict[type, Callable] = {}
        self._active: set[int] = set()
        self._cycles = 0  # "<cycle>" texts written so far: a Node built while it grew shows one
        # (id(obj), depth, attr scope) -> weakref to the last Node of a large Struct: see _shared_hint.
        self._shared: dict[tuple, weakref.ref] = {}
        self._shared_limit = SHARED_PURGE_AT
        self.in_repr = False
        # `_last`: what the text of the value just encoded depends on (EMPTY: nothing that can
        # change while the value stays the same object; a Node; None: it must be re-encoded
        # every time, e.g. a repr).  `_hint`: the Node of the next value's last encoding.
        self._last: Node | tuple | None = EMPTY
        self._hint: Node | None = None
        self._unchanged = _unchanged
        self._stale = self._stale_positions
        self._item_texts: Callable[[tuple, int], tuple[list, list]] | None = None
        (self._snapshot_list, self._snapshot_set, self._snapshot_frozenset, self._snapshot_deque,
         self._snapshot_dict) = make_snapshots(max_items)
        t = types_.intern
        self._int_suffix = ',"type_id":%d}' % t(KIND_INT, "int")
        self.int_value_suffix = self._int_suffix + "}}"  # closes an Int inside a Value event
        self._float_suffix = '","type_id":%d}' % t(KIND_FLOAT, "float")
        self._str_suffix = ',"type_id":%d}' % t(KIND_STRING, "str")
        bool_tid = t(KIND_BOOL, "bool")
        self._true = '{"kind":"Bool","b":true,"type_id":%d}' % bool_tid
        self._false = '{"kind":"Bool","b":false,"type_id":%d}' % bool_tid
        self._any_tid = -1
        self._by_type.update({
            type(None): self._none,
            bool: self._bool,
            int: self.int_text,
            float: self._float,
            str: self._str,
            bytes: self._bytes,
            bytearray: self._bytes,
            list: self._list,
            tuple: self._tuple,
            dict: self._dict,
            set: self._set,
            frozenset: self._set,
        })

    # -- entry point ---------------------------------------------------------------------

    def encode(self, value: object, depth: int = 0) -> str:
        fn = self._by_type.get(type(value))
        if fn is None:
            fn = self._classify(type(value))
        return fn(value, depth)

    def encode_tracked(self, value: object, hint: Node | None = None) -> tuple[str, Node | tuple | None]:
        """Encode `value` and return (text, dep): dep is EMPTY when the text stays exact as
        long as the value is the same object, a Node to pass back as `hint` when encoding the
        same object again (the hint itself when nothing changed), or None when the text must
        be computed afresh every time."""
        try:
            return self._encode_item(value, 0, hint)
        finally:
            self._hint = None  # a leaf never takes its hint: it must not reach the next value

    def _encode_item(self, item: object, depth: int, hint: Node | None = None) -> tuple[str, Node | tuple | None]:
        """(text, dep) of one value at `depth`, re-encoded from `hint` (its last Node) if given."""
        self._last = EMPTY
        self._hint = hint
        text = self.encode(item, depth)
        self._hint = None
        return text, self._last

    def _elements_of(self, shown: tuple, depth: int, hint: Node | None) -> tuple[list, list, bool, list | None]:
        """Texts and deps of the shown items, whether anything differs from `hint`, and the
        positions that were encoded again (None: all of them, without a hint): an item that
        is the same object as at the same position last time, and whose dependencies are
        unchanged, keeps its text."""
        encode_item = self._encode_item
        if hint is None:
            # _encode_item inlined: this loop encodes every new container's items (10% faster).
            encode = self.encode
            if self._item_texts is not None:
                # The accelerator writes the scalars and tuples of scalars (dep EMPTY).
                texts, misses = self._item_texts(shown, depth)
                deps = [EMPTY] * len(texts)
                for i in misses:
                    self._last = EMPTY
                    texts[i] = encode(shown[i], depth)
                    deps[i] = self._last
                    self._hint = None
                return texts, deps, True, None
            texts = []
            deps = []
            for item in shown:
                self._last = EMPTY
                texts.append(encode(item, depth))
                deps.append(self._last)
                self._hint = None
            return texts, deps, True, None
        old_items = hint.items
        stale = self._stale(shown, old_items, hint.deps)
        count = len(shown)
        if not stale and count == len(old_items):
            return hint.texts, hint.deps, False, stale
        texts = hint.texts[:count]
        deps = hint.deps[:count]
        if count > len(texts):
            texts += [None] * (count - len(texts))
            deps += [None] * (count - len(deps))
        changed = count != len(old_items)
        for i in stale:
            item = shown[i]
            same = i < len(old_items) and old_items[i] is item
            old_dep = deps[i]
            text, new_dep = encode_item(item, depth, old_dep if same else None)  # old_dep: a Node or None
            if not same or new_dep is not old_dep or text != texts[i]:
                changed = True
            texts[i] = text
            deps[i] = new_dep
        return texts, deps, changed, stale

    def _stale_positions(self, shown: tuple, old_items: tuple, old_deps: list) -> list:
        """Positions of `shown` whose last text cannot be reused: a new object there, or one
        whose dependencies changed (the accelerator has the same function in C)."""
        unchanged = self._unchanged
        stale = []
        count = len(old_items)
        for i, item in enumerate(shown):
            if i >= count or old_items[i] is not item:
                stale.append(i)
                continue
            dep = old_deps[i]
            if dep is not EMPTY and (dep is None or not unchanged(dep)):
                stale.append(i)
        return stale

    def unchanged(self, dep: Node | tuple) -> bool:
        """True when the text that `dep` (EMPTY or a Node) describes is still exact for its value."""
        return dep is EMPTY or self._unchanged(dep)

    def use_node_check(self, unchanged: Callable[[Node], bool], stale_positions: Callable) -> None:
        """Check nodes with the accelerator's versions of `_unchanged` and `_stale_positions`."""
        self._unchanged = unchanged
        self._stale = stale_positions

    def use_item_texts(self, item_texts: Callable[[tuple, int], tuple[list, list]]) -> None:
        """Write the scalar items of new containers with the accelerator's `item_texts(items,
        depth)`, which returns (texts, misses): None in texts at each position in misses."""
        self._item_texts = item_texts

    # -- helpers -------------------------------------------------------------------------

    def _tid(self, kind: int, lang_type: str) -> int:
        key = (kind, lang_type)
        tid = self._type_ids.get(key)
        if tid is None:
            tid = self._type_ids[key] = self.types.intern(kind, lang_type)
        return tid

    def error(self, msg: str, lang_type: str = "<error>") -> str:
        return '{"kind":"Error","msg":%s,"type_id":%d}' % (_escape(msg), self._tid(KIND_ERROR, lang_type))

    def raw(self, text: str, lang_type: str, kind: int = KIND_RAW) -> str:
        if len(text) > self.max_string:
            text = text[:self.max_string] + "...<+%d chars>" % (len(text) - self.max_string)
        return '{"kind":"Raw","r":%s,"type_id":%d}' % (_escape(text), self._tid(kind, lang_type))

    def _summary(self, value: object, lang_type: str, hint: Node | None) -> str:
        # Past the depth bound a container is shown by its size only.
        try:
            size = len(value)  # type: ignore[arg-type]
        except Exception:
            self._last = None
            return self.raw("<%s>" % lang_type, lang_type)
        if isinstance(value, tuple):
            return self.raw(_size_text(lang_type, size), lang_type)
        if hint is not None and hint.obj is value and hint.snapshot is _snapshot_len and hint.size == size \
                and hint.tp is type(value):
            self._last = hint
            return hint.text
        text = self.raw(_size_text(lang_type, size), lang_type)
        self._last = Node(_snapshot_len, value, size, (), [], [], [], text)
        return text

    def _more(self, hidden: int) -> str:
        return self.raw("<+%d more>" % hidden, "<truncated>")

    # -- scalars -------------------------------------------------------------------------

    def _none(self, value: object, depth: int) -> str:
        return NONE_TEXT

    def _bool(self, value: object, depth: int) -> str:
        return self._true if value else self._false

    def int_text(self, value: int, depth: int = 0) -> str:
        """An int's Int (or BigInt) text; the recorder calls it directly for int arguments
        and return values, which need no Node."""
        if I64_MIN <= value <= I64_MAX:
            return '{"kind":"Int","i":' + int.__repr__(value) + self._int_suffix
        return self._bigint(value, "int")

    def _bigint(self, value: int, lang_type: str) -> str:
        magnitude = -value if value < 0 else value
        data = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        return '{"kind":"BigInt","b":"%s","negative":%s,"type_id":%d}' % (
            binascii.b2a_base64(data, newline=False).decode("ascii"), "true" if value < 0 else "false",
            self._tid(KIND_INT, lang_type))

    def _float(self, value, depth: int) -> str:
        # repr gives "inf", "-inf", "nan", "-0.0", "1e+300": all valid Float.f strings.
        return '{"kind":"Float","f":"' + float.__repr__(value) + self._float_suffix

    def _str(self, value, depth: int) -> str:
        if len(value) > self.max_string:
            value = value[:self.max_string] + "...<+%d chars>" % (len(value) - self.max_string)
        return '{"kind":"String","text":' + _escape(value) + self._str_suffix

    def _bytes(self, value, depth: int) -> str:
        if type(value) is not bytes:
            self._last = None  # a bytearray changes in place
        shown = bytes(value[:self.max_string])
        text = repr(shown)
        if len(value) > self.max_string:
            text += "...<+%d bytes>" % (len(value) - self.max_string)
        return self.raw(text, type(value).__name__)

    # -- containers ----------------------------------------------------------------------

    def _sequence(self, value, snapshot, lang_type: str, kind: int, depth: int) -> str:
        hint = self._hint
        self._hint = None
        if depth >= self.max_depth:
            return self._summary(value, lang_type, hint)
        key = id(value)
        if key in self._active:
            self._cycles += 1
            return self.error("<cycle>", lang_type)
        # Copy the shown items in one C call first: encoding runs Python code, during which
        # another thread may mutate the container ("changed size during iteration").
        size, shown = snapshot(value)
        if hint is not None:
            if hint.obj is not value or hint.snapshot is not snapshot or hint.tp is not type(value):
                hint = None
        self._active.add(key)
        try:
            texts, deps, changed, _ = self._elements_of(shown, depth + 1, hint)
        finally:
            self._active.discard(key)
        if not changed and size == hint.size:
            self._last = hint
            return hint.text
        parts = texts
        if size > len(shown):
            parts = texts + [self._more(size - len(shown))]
        text = '{"kind":"Sequence","elements":[%s],"is_slice":false,"type_id":%d}' % (
            ",".join(parts), self._tid(kind, lang_type))
        self._last = Node(snapshot, value, size, shown, texts, deps, texts, text)
        return text

    def _list(self, value, depth: int) -> str:
        return self._sequence(value, self._snapshot_list, type(value).__name__, KIND_SEQ, depth)

    def _set(self, value, depth: int) -> str:
        snapshot = self._snapshot_set if isinstance(value, set) else self._snapshot_frozenset
        return self._sequence(value, snapshot, type(value).__name__, KIND_HASHSET, depth)

    def _deque(self, value, depth: int) -> str:
        return self._sequence(value, self._snapshot_deque, type(value).__name__, KIND_SEQ, depth)

    def _tuple(self, value, depth: int) -> str:
        hint = self._hint
        self._hint = None
        lang_type = type(value).__name__
        if depth >= self.max_depth:
            return self._summary(value, lang_type, hint)
        key = id(value)
        if key in self._active:
            self._cycles += 1
            return self.error("<cycle>", lang_type)
        if hint is not None and (hint.obj is not value or hint.snapshot is not _snapshot_tuple
                                 or hint.tp is not type(value)):
            hint = None
        # A tuple's items never change: only those that are containers need checking.
        shown = hint.items if hint is not None else tuple(islice(tuple.__iter__(value), self.max_items))
        self._active.add(key)
        try:
            texts, deps, changed, _ = self._elements_of(shown, depth + 1, hint)
        finally:
            self._active.discard(key)
        if not changed:
            self._last = hint
            return hint.text
        size = tuple.__len__(value)
        parts = texts
        if size > len(shown):
            parts = texts + [self._more(size - len(shown))]
        text = '{"kind":"Tuple","elements":[%s],"type_id":%d}' % (",".join(parts), self._tid(KIND_TUPLE, lang_type))
        if any(dep is not EMPTY for dep in deps):
            self._last = Node(_snapshot_tuple, value, size, shown, texts, deps, texts, text)
        else:
            self._last = EMPTY
        return text

    def _dict(self, value, depth: int) -> str:
        hint = self._hint
        self._hint = None
        lang_type = type(value).__name__
        if depth >= self.max_depth:
            return self._summary(value, lang_type, hint)
        key = id(value)
        if key in self._active:
            self._cycles += 1
            return self.error("<cycle>", lang_type)
        snapshot = self._snapshot_dict
        size, flat = snapshot(value)  # one C call: see _sequence
        if hint is not None:
            if hint.obj is not value or hint.snapshot is not snapshot or hint.tp is not type(value):
                hint = None
        self._active.add(key)
        try:
            texts, deps, changed, stale = self._elements_of(flat, depth + 2, hint)
        finally:
            self._active.discard(key)
        if not changed and size == hint.size:
            self._last = hint
            return hint.text
        # Each pair is a Tuple; a pair whose key and value texts are unchanged keeps its text.
        pair_tid = self._tid(KIND_TUPLE, "tuple")
        old_texts = hint.texts if hint is not None else ()
        old_parts = hint.parts if hint is not None else ()
        if stale is not None and len(texts) == len(old_texts):
            # The same keys shown: only the pairs at the positions encoded again can differ.
            parts = list(old_parts)
            pairs = {j >> 1 for j in stale}
        else:
            parts = [None] * (len(texts) >> 1)
            pairs = range(len(parts))
        for pair in pairs:
            j = pair << 1
            k_text = texts[j]
            v_text = texts[j + 1]
            if j + 1 < len(old_texts) and k_text is old_texts[j] and v_text is old_texts[j + 1]:
                parts[pair] = old_parts[pair]
            else:
                parts[pair] = '{"kind":"Tuple","elements":[%s,%s],"type_id":%d}' % (k_text, v_text, pair_tid)
        shown = len(flat) // 2
        body = ",".join(parts) if size <= shown else ",".join(parts + [self._more(size - shown)])
        text = '{"kind":"Sequence","elements":[%s],"is_slice":false,"type_id":%d}' % (
            body, self._tid(KIND_SEQ, lang_type))
        self._last = Node(snapshot, value, size, flat, texts, deps, parts, text)
        return text

    # -- objects -------------------------------------------------------------------------

    def _classify(self, tp: type) -> Callable[[object, int], str]:
        """Pick (once per type) how values of an unlisted type are encoded."""
        if issubclass(tp, bool):
            fn = self._bool
        elif issubclass(tp, enum.Enum):
            fn = self._enum
        elif issubclass(tp, int):
            fn = self._int_subclass
        elif issubclass(tp, float):
            fn = lambda v, d: '{"kind":"Float","f":"%s","type_id":%d}' % (  # noqa: E731
                float.__repr__(v), self._tid(KIND_FLOAT, tp.__name__))
        elif issubclass(tp, str):
            fn = lambda v, d: self._str_typed(v, tp.__name__)  # noqa: E731
        elif issubclass(tp, BaseException):
            fn = self._exception
        elif issubclass(tp, tuple) and isinstance(getattr(tp, "_fields", None), tuple):
            fn = self._namedtuple
        elif issubclass(tp, tuple):
            fn = self._tuple
        elif issubclass(tp, list):
            fn = self._list
        elif issubclass(tp, dict):
            fn = self._dict
        elif issubclass(tp, (set, frozenset)):
            fn = self._set
        elif issubclass(tp, deque):
            fn = self._deque
        elif issubclass(tp, (bytes, bytearray)):
            fn = self._bytes
        elif issubclass(tp, type):
            fn = self._class
        elif issubclass(tp, types.ModuleType):
            fn = self._module
        elif issubclass(tp, types.MethodType):
            fn = self._method
        elif issubclass(tp, _FUNCTION_TYPES):
            fn = self._function
        elif (_type_module(tp) or "").startswith("rewind."):
            fn = self._own_object
        elif not _is_stdlib_type(tp) and (tp.__dictoffset__ != 0 or _slot_descriptors(tp)):
            fields_of = _fields_reader(tp)
            fn = lambda v, d: self._struct(v, d, tp, fields_of)  # noqa: E731
        else:
            fn = self._repr
            name = (_type_module(tp), _type_qualname(tp))
            if name in _STABLE_REPR_NAMES or _has_default_repr(tp):
                self._stable_repr_types.add(tp)
            elif name in _REPR_INPUT_NAMES:
                self._repr_nodes[tp] = _attribute_repr_node(tp, _REPR_INPUT_NAMES[name])
            elif _has_attribute_holder_repr(tp):
                self._repr_nodes[tp] = _attribute_holder_node(tp)
        self._by_type[tp] = fn
        return fn

    def _own_object(self, value, depth: int) -> str:
        """rewind's own objects that the program can reach (the stdout/stderr/stdin proxies of IO
        capture): shown as the stream they stand in for, never as rewind's internals."""
        try:
            target = object.__getattribute__(value, "_rw_target")
        except AttributeError:
            name = type(value).__name__
            return self.raw("<%s object>" % name, name)
        return self.encode(target, depth)

    def _int_subclass(self, value, depth: int) -> str:
        plain = int(int.__index__(value))
        lang_type = type(value).__name__
        if I64_MIN <= plain <= I64_MAX:
            return '{"kind":"Int","i":%d,"type_id":%d}' % (plain, self._tid(KIND_INT, lang_type))
        return self._bigint(plain, lang_type)

    def _str_typed(self, value, lang_type: str) -> str:
        text = str.__str__(value)
        if len(text) > self.max_string:
            text = text[:self.max_string] + "...<+%d chars>" % (len(text) - self.max_string)
        return '{"kind":"String","text":%s,"type_id":%d}' % (_escape(text), self._tid(KIND_STRING, lang_type))

    def _enum(self, value, depth: int) -> str:
        tp = type(value)
        return self.raw("%s.%s" % (tp.__name__, value._name_), tp.__name__, KIND_ENUM)

    def _exception(self, value, depth: int) -> str:
        return self.raw(exception_text(value), type(value).__name__)

    def _class(self, value, depth: int) -> str:
        module = value.__dict__.get("__module__", "builtins")
        return self.raw("<class '%s.%s'>" % (module, _type_name(value)), "type", KIND_TYPEVALUE)

    def _module(self, value, depth: int) -> str:
        name = value.__dict__.get("__name__", "?")
        return self.raw("<module '%s'>" % name, "module")

    def _method(self, value, depth: int) -> str:
        func = value.__func__
        name = getattr(func, "__qualname__", None) or getattr(func, "__name__", "?")
        return self.raw("<bound method %s>" % name, "method", KIND_FUNCTION)

    def _function(self, value, depth: int) -> str:
        name = getattr(value, "__qualname__", None) or getattr(value, "__name__", "?")
        return self.raw("<function %s>" % name, type(value).__name__, KIND_FUNCTION)

    def _namedtuple(self, value, depth: int) -> str:
        tp = type(value)
        fields_of = self._namedtuple_readers.get(tp)
        if fields_of is None:
            fields_of = self._namedtuple_readers[tp] = _namedtuple_reader(tp)
        return self._struct(value, depth, tp, fields_of)

    def _struct(self, value, depth: int, tp: type, fields_of) -> str:
        hint = self._hint
        self._hint = None
        lang_type = tp.__name__
        if depth >= self.max_depth:
            # Shown by its type name only: the text changes only with the object's class.
            if hint is not None and hint.obj is value and hint.snapshot is _snapshot_nothing and hint.tp is tp:
                self._last = hint
                return hint.text
            text = self.raw("<%s object>" % lang_type, lang_type, KIND_STRUCT)
            self._last = Node(_snapshot_nothing, value, 0, (), [], [], [], text)
            return text
        key = id(value)
        if key in self._active:
            self._cycles += 1
            return self.error("<cycle>", lang_type)
        scope = self.attr_scope()
        if hint is None:
            hint = self._shared_hint(value, depth, scope)
        cycles = self._cycles
        size, flat = fields_of(value)
        self._active.add(key)
        try:
            if hint is not None and hint.obj is value and hint.snapshot is fields_of and hint.size == size \
                    and len(hint.items) == len(flat) and all(map(is_, flat[0::2], hint.items[0::2])):
                text = self._refresh_struct(flat, depth, hint)
            else:
                if hint is not None and (hint.obj is not value or hint.snapshot is not fields_of):
                    hint = None
                text = self._struct_fields(value, depth, tp, fields_of, size, flat, hint)
        finally:
            self._active.discard(key)
        node = self._last
        if type(node) is Node:
            if self._cycles != cycles or (hint is not None and hint.cyclic):
                node.cyclic = True
            elif len(text) >= SHARED_MIN_CHARS:
                self._share(node, depth, scope)
        return text

    # -- Structs seen again in another frame -----------------------------------------------
    # A method's `self`, or an object reached from it, is often the one a caller (or the last
    # call) showed already, but the new frame has no Node for it, and a large object would be
    # encoded whole again.  The last Node of each large Struct is kept here by weak reference:
    # it lives only as long as a frame's cache (or a Node in it) holds it, so rewind keeps no
    # object of the program alive for longer than before.  Its text is reused when it is
    # exact in the new place: same depth and attribute rules, no "<cycle>" in it, and no object
    # it shows expanded is being encoded around it now (there it would be a "<cycle>").

    def _shared_hint(self, value, depth: int, scope) -> Node | None:
        ref = self._shared.get((id(value), depth, scope))
        if ref is None:
            return None
        node = ref()
        if node is None or node.obj is not value or not self._fits_here(node, depth):
            return None
        return node

    def _fits_here(self, node: Node, depth: int) -> bool:
        """True when no container or object `node` shows expanded (above the depth bound) is
        being encoded now, around the place it is to be reused at `depth`."""
        active = self._active
        if not active:
            return True
        level = [node]
        while True:
            for each in level:
                if id(each.obj) in active:
                    return False
            depth += 1
            if depth >= self.max_depth:
                return True  # shown past the bound: by their size or type name, never a <cycle>
            level = [dep for each in level for dep in each.deps if type(dep) is Node]
            if not level:
                return True

    def _share(self, node: Node, depth: int, scope) -> None:
        shared = self._shared
        shared[(id(node.obj), depth, scope)] = weakref.ref(node)
        if len(shared) > self._shared_limit:
            # Entries of Nodes that are gone: dropped in one pass once they pile up.
            for key in [key for key, ref in shared.items() if ref() is None]:
                del shared[key]
            self._shared_limit = max(SHARED_PURGE_AT, 2 * len(shared))

    def _struct_fields(self, value, depth: int, tp: type, fields_of, size: int, flat: tuple,
                       hint: Node | None = None) -> str:
        """A Struct of the fields in `flat` (name0, value0, name1, ...), filtered by `attr` rules.
        With `hint` (the same object when it had other attributes: one was added or removed),
        a field that holds the same object as then keeps or refreshes its old encoding."""
        action = self.attr_action
        earlier = {}
        if hint is not None:
            old_flat = hint.items
            for at in hint.fields:  # {name: (value, text, dep)} of the fields shown last time
                earlier[old_flat[at - 1]] = (old_flat[at], hint.texts[at], hint.deps[at])
        names = []
        parts = []
        texts: list = [None] * len(flat)
        deps: list = [EMPTY] * len(flat)
        shown_fields = {}  # {index in flat: index in parts} of each encoded field
        hidden = 0
        for at in range(0, len(flat) - 1, 2):
            name = flat[at]
            if not isinstance(name, str):
                continue
            decision = action(name)
            if decision == "drop":
                self.attr_drops += 1
                continue
            if len(names) >= self.max_items:
                hidden += 1
                continue
            names.append(name)
            if decision == "redact":
                self.attr_redactions += 1
                parts.append(self.error("<redacted>"))
            else:
                field = flat[at + 1]
                old = earlier.get(name) if earlier else None
                previous = old[2] if old is not None and old[0] is field else None  # EMPTY, a Node or None
                if previous is not None and self.unchanged(previous):
                    text, dep = old[1], previous
                else:
                    text, dep = self._encode_item(field, depth + 1, previous)
                texts[at + 1] = text
                deps[at + 1] = dep
                shown_fields[at + 1] = len(parts)
                parts.append(text)
        if hidden:
            names.append("...")
            parts.append(self._more(hidden))
        tid = self._struct_type(tp, tp.__name__, tuple(names))
        text = '{"kind":"Struct","field_values":[%s],"type_id":%d}' % (",".join(parts), tid)
        node = Node(fields_of, value, size, flat, texts, deps, parts, text)
        node.fields = shown_fields
        node.type_id = tid
        self._last = node
        return text

    def _refresh_struct(self, flat: tuple, depth: int, hint: Node) -> str:
        """The same object with the same field names as last time: re-encode only the shown
        fields whose value changed (filter decisions and the Struct type stay the same)."""
        old_items = hint.items
        old_texts = hint.texts
        old_deps = hint.deps
        shown_at = hint.fields  # {index in flat: index in parts} of the encoded fields
        texts = deps = parts = None
        for at in self._stale(flat, old_items, old_deps):
            pos = shown_at.get(at)
            if pos is None:
                continue  # a field that is not shown (dropped, redacted, past the bound)
            item = flat[at]
            same = old_items[at] is item
            dep = old_deps[at]
            text, new_dep = self._encode_item(item, depth + 1, dep if same else None)
            if same and new_dep is dep and text == old_texts[at]:
                continue
            if parts is None:
                texts, deps, parts = list(old_texts), list(old_deps), list(hint.parts)
            texts[at] = text
            deps[at] = new_dep
            parts[pos] = text
        if parts is None:
            self._last = hint
            return hint.text
        text = '{"kind":"Struct","field_values":[%s],"type_id":%d}' % (",".join(parts), hint.type_id)
        node = Node(hint.snapshot, hint.obj, hint.size, flat, texts, deps, parts, text)
        node.fields = shown_at
        node.type_id = hint.type_id
        self._last = node
        return text

    def _struct_type(self, tp: type, lang_type: str, names: tuple) -> int:
        key = (tp, names)
        tid = self._struct_types.get(key)
        if tid is None:
            if self._any_tid < 0:
                self._any_tid = self.types.intern(KIND_ANY, "object")
            fields = ",".join('{"name":%s,"type_id":%d}' % (_escape(n), self._any_tid) for n in names)
            tid = self.types.intern(KIND_STRUCT, lang_type, '{"kind":"Struct","fields":[%s]}' % fields)
            self._struct_types[key] = tid
        return tid

    def _repr(self, value, depth: int) -> str:
        tp = type(value)
        lang_type = tp.__name__
        if tp not in self._stable_repr_types:
            self._last = None  # a repr can change while the object stays the same
        if tp in self._slow_repr_types:
            return self.raw("<%s object>" % lang_type, lang_type)
        started = time.perf_counter()
        # While repr runs, code it calls is not recorded (it is not the program's own doing).
        self.in_repr = True
        try:
            text = repr(value)
            if not isinstance(text, str):
                return self.error("<unrepr>", lang_type)
        except Exception:
            return self.error("<unrepr>", lang_type)
        finally:
            self.in_repr = False
        if time.perf_counter() - started > SLOW_REPR_SECONDS:
            self._slow_repr_types.add(tp)
        text = self.raw(text, lang_type)
        node_of = self._repr_nodes.get(tp)
        if node_of is not None:
            # Exact while what the Node holds is the same (checked like a container's items:
            # _unchanged, the accelerator's node check).
            node = node_of(value, text)
            if node is not None:
                self._last = node
        return text


def _size_text(lang_type: str, size: int) -> str:
    """A container past the depth bound: `<list of 3 items>`, `<tuple of 1 item>`."""
    return "<%s of %d %s>" % (lang_type, size, "item" if size == 1 else "items")


# -- what an encoding depends on ---------------------------------------------------------------

EMPTY = ()  # the dep of a text that stays exact as long as the value is the same object
SHARED_MIN_CHARS = 512  # a smaller Struct costs less to encode again than to share
SHARED_PURGE_AT = 4096  # entries of ValueEncoder._shared before the first purge of dead ones


class Node:
    """One container or object as it was last encoded: `snapshot(obj)` gave (size, items);
    `texts[i]`/`deps[i]` are the text and dep of items[i]; `parts` are the element texts as
    joined into `text` (dict: one pair Tuple per key and value)."""

    __slots__ = ("snapshot", "obj", "tp", "size", "items", "texts", "deps", "parts", "text", "subnodes",
                 "fields", "type_id", "cyclic", "__weakref__")

    def __init__(self, snapshot, obj, size: int, items: tuple, texts: list, deps: list, parts: list, text: str):
        self.snapshot = snapshot
        self.obj = obj
        self.tp = type(obj)  # `obj.__class__ = ...` changes how it is shown
        self.size = size
        self.items = items
        self.texts = texts
        self.deps = deps
        self.parts = parts
        self.text = text
        # The deps to check for the text to stay exact: EMPTY (none), None (an item must be
        # re-encoded every time) or the nodes of the items that are containers.
        subnodes = tuple([dep for dep in deps if dep is not EMPTY])
        self.subnodes = EMPTY if not subnodes else (None if None in subnodes else subnodes)
        # A Struct's text shows a "<cycle>" (set by ValueEncoder._struct): it is exact only
        # around the same objects, so it is never reused in another place.
        self.cyclic = False



# Snapshot kinds, set as the `snapshot_kind` attribute of each snapshot function so that the
# accelerator (accelerator/_nodes.c) can take those snapshots natively; any other function
# (kind 0) is called.
SNAPSHOT_CALL, SNAPSHOT_LIST, SNAPSHOT_DICT, SNAPSHOT_SET, SNAPSHOT_LEN, SNAPSHOT_TUPLE, SNAPSHOT_NOTHING, \
    SNAPSHOT_DICT_FIELDS, SNAPSHOT_ATTRIBUTE, SNAPSHOT_FIELDS = range(10)


def _unchanged(node: Node) -> bool:
    """True when the object still holds the same items (compared by identity at C speed,
    never calling user `__eq__`) and so do the containers among them, recursively."""
    if type(node.obj) is not node.tp:
        return False
    snapshot = node.snapshot
    if snapshot is not _snapshot_tuple:  # a tuple's own items cannot change
        size, items = snapshot(node.obj)
        old = node.items
        if size != node.size or len(items) != len(old) or not all(map(is_, items, old)):
            return False
    subnodes = node.subnodes
    return subnodes is EMPTY or (subnodes is not None and all(map(_unchanged, subnodes)))


# -- shallow snapshots -------------------------------------------------------------------------
# (size, shown items) of a container, taken in one C call.  The encoder shows at most
# `limit` items, and they are what an encoding depends on; see Node and _unchanged.

def make_snapshots(limit: int):
    def of_list(value) -> tuple[int, tuple]:
        return list.__len__(value), tuple(islice(list.__iter__(value), limit))

    def of_set(value) -> tuple[int, tuple]:
        return set.__len__(value), tuple(islice(set.__iter__(value), limit))

    def of_frozenset(value) -> tuple[int, tuple]:
        return frozenset.__len__(value), tuple(islice(frozenset.__iter__(value), limit))

    def of_deque(value) -> tuple[int, tuple]:
        return deque.__len__(value), tuple(islice(deque.__iter__(value), limit))

    def of_dict(value) -> tuple[int, tuple]:
        # keys and values interleaved: k0, v0, k1, v1...
        return dict.__len__(value), tuple(chain.from_iterable(islice(dict.items(value), limit)))

    of_list.snapshot_kind = SNAPSHOT_LIST
    of_set.snapshot_kind = of_frozenset.snapshot_kind = SNAPSHOT_SET
    of_dict.snapshot_kind = SNAPSHOT_DICT
    return of_list, of_set, of_frozenset, of_deque, of_dict


def _snapshot_len(value) -> tuple[int, tuple]:
    return len(value), ()


def _snapshot_nothing(value) -> tuple[int, tuple]:
    # Marks the Node of a text that depends on the object's class only (checked by _unchanged).
    return 0, ()


def _snapshot_tuple(value) -> tuple[int, tuple]:
    # Marks the Node of a tuple (see _unchanged): its items never change, only the nodes
    # among them are checked.
    return tuple.__len__(value), ()


def _namedtuple_reader(tp: type):
    """A snapshot function for a namedtuple type: (count, name0, value0, ...)."""
    names = tp._fields

    def fields_of(value) -> tuple[int, tuple]:
        count = min(len(names), tuple.__len__(value))
        flat = tuple(chain.from_iterable(zip(names, tuple.__iter__(value))))
        return count, flat

    # The same namedtuple always gives the same snapshot (a tuple's items never change): the
    # accelerator checks only the nodes of its fields, as for a plain tuple.
    fields_of.snapshot_kind = SNAPSHOT_TUPLE
    return fields_of


def _fields_reader(tp: type):
    """A snapshot function for instances of the user class `tp`: (count, name0, value0, ...),
    read from `__dict__` and slot descriptors (never through `__getattr__`).  An object
    whose class was reassigned since gets a count of -1, which no encoding was made with."""
    slots = _slot_descriptors(tp)
    has_dict = tp.__dictoffset__ != 0
    get = object.__getattribute__
    flatten = chain.from_iterable
    items = dict.items

    if has_dict and not slots:
        def dict_fields_of(value) -> tuple[int, tuple]:
            if type(value) is not tp:
                return -1, ()
            try:
                attrs = get(value, "__dict__")
            except Exception:
                return 0, ()
            if type(attrs) is not dict:
                return 0, ()
            flat = tuple(flatten(items(attrs)))
            return len(flat) >> 1, flat

        dict_fields_of.snapshot_kind = SNAPSHOT_DICT_FIELDS
        return dict_fields_of

    def fields_of(value) -> tuple[int, tuple]:
        if type(value) is not tp:
            return -1, ()
        flat: tuple = ()
        if has_dict:
            try:
                attrs = get(value, "__dict__")
            except Exception:
                attrs = None
            if type(attrs) is dict:
                flat = tuple(flatten(items(attrs)))
        for name, descriptor in slots:
            try:
                flat += (name, descriptor.__get__(value, tp))
            except AttributeError:
                pass  # an unset slot is not an attribute yet
        return len(flat) // 2, flat

    # The accelerator takes this snapshot itself, the same way (accelerator/_nodes.c).
    fields_of.snapshot_kind = SNAPSHOT_FIELDS
    fields_of.snapshot_fields = (has_dict, tuple(slots))
    return fields_of


def _attribute_repr_node(tp: type, name: str):
    """node_of(value, text) for a type of _REPR_INPUT_NAMES.  Its snapshot is (0, (attribute,))
    while the attribute is a str, whose repr cannot change; -1 (never equal) otherwise, and for
    an object whose class was reassigned or whose attribute cannot be read."""
    descriptor = _type_dict(tp).get(name)
    getter = descriptor.__get__ if descriptor is not None and hasattr(descriptor, "__get__") else None
    get = object.__getattribute__

    def inputs_of(value) -> tuple[int, tuple]:
        if type(value) is not tp:
            return -1, ()
        try:
            attribute = getter(value, tp) if getter is not None else get(value, name)
        except Exception:
            return -1, ()
        return (0, (attribute,)) if type(attribute) is str else (-1, ())

    # The accelerator reads the attribute itself, the same way (accelerator/_nodes.c).
    inputs_of.snapshot_kind = SNAPSHOT_ATTRIBUTE
    inputs_of.snapshot_attribute = (descriptor if getter is not None else None, name)

    def node_of(value, text: str) -> Node | None:
        size, inputs = inputs_of(value)
        return Node(inputs_of, value, size, inputs, [], [], [], text) if size >= 0 else None

    return node_of


# -- reprs that depend on the items of plain containers ----------------------------------------
# argparse's Namespace and actions show `Name(key=value, ...)` from their attributes, and the
# repr of each value.  When every value is an immutable scalar or a plain list, tuple or dict
# of such values (what option values are), the repr can only change if one of those
# containers or attributes changes: their Node tree (every item, not only the shown ones)
# says when it must be taken again.  A function or a class (an action's `type=int`) is shown
# by its name and identity, which do not change either (a rename after the repr was taken is
# not seen, as for the default repr of objects).  Anything else (an object, a partial, more
# than _REPR_DEPS_LIMIT items in all, containers nested deeper than _REPR_DEPS_DEPTH) leaves
# the repr to be taken at every step.

_REPR_SCALARS = frozenset({int, float, complex, str, bytes, bool, type(None)})
_REPR_NAMED = frozenset({types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
                         types.WrapperDescriptorType, type})  # `type`: a class whose metaclass is type
_REPR_DEPS_LIMIT = 500
_REPR_DEPS_DEPTH = 8
_all_of_list, _, _, _, _all_of_dict = make_snapshots(sys.maxsize)


def _has_attribute_holder_repr(tp: type) -> bool:
    """An argparse class whose repr is argparse._AttributeHolder.__repr__ over its instance
    attributes (Namespace, the actions), looked up without running metaclass code."""
    if _type_module(tp) != "argparse":
        return False
    argparse = sys.modules.get("argparse")
    holder = getattr(argparse, "_AttributeHolder", None)
    if holder is None:
        return False
    wanted = {"__repr__": holder, "_get_args": holder, "_get_kwargs": None}
    for name in wanted:
        for klass in _type_mro(tp):
            if name in _type_dict(klass):
                if _type_module(klass) != "argparse":
                    return False
                if wanted[name] is not None and klass is not wanted[name]:
                    return False
                break
    return tp.__dictoffset__ != 0 and not _slot_descriptors(tp)


def _repr_deps(value, budget: list, depth: int = 0):
    """EMPTY when the repr of `value` cannot change, a Node over every item it is made of
    when it changes only with them, None when that is not known (see above).  `budget`
    holds how many more items may be looked at."""
    tp = type(value)
    if tp in _REPR_SCALARS or tp in _REPR_NAMED:
        return EMPTY
    if tp not in (list, tuple, dict) or depth >= _REPR_DEPS_DEPTH:
        return None
    budget[0] -= 1 + len(value)
    if budget[0] < 0:
        return None
    if tp is dict:
        if not all(type(key) in _REPR_SCALARS for key in dict.keys(value)):
            return None
        size, items = _all_of_dict(value)
        snapshot = _all_of_dict
        values = items[1::2]
    elif tp is list:
        size, items = _all_of_list(value)
        snapshot = _all_of_list
        values = items
    else:
        size, items, snapshot, values = tuple.__len__(value), tuple(value), _snapshot_tuple, value
    deps = []
    for item in values:
        dep = _repr_deps(item, budget, depth + 1)
        if dep is None:
            return None
        deps.append(dep)
    if tp is tuple and all(dep is EMPTY for dep in deps):
        return EMPTY
    return Node(snapshot, value, size, items, [], deps, [], "")


def _attribute_holder_node(tp: type):
    """node_of(value, text) for an argparse class (see _has_attribute_holder_repr): a Node over
    its `__dict__` items, with the deps of the values its repr shows."""
    fields_of = _fields_reader(tp)  # (count, key0, value0, ...) of __dict__: the Node's snapshot

    def node_of(value, text: str) -> Node | None:
        size, flat = fields_of(value)
        if size < 0 or not all(type(key) is str for key in flat[::2]):
            return None  # another class now, or a key that is not a name
        try:
            # The attributes the repr shows (argparse's own method: all of a Namespace's, an
            # action's option_strings, dest, default...; not the group holding the action).
            shown = [pair[0] for pair in tp._get_kwargs(value)]
        except Exception:
            return None
        keys = flat[::2]
        present = frozenset(keys)
        if not all(type(name) is str and name in present for name in shown):
            return None  # an attribute read from the class: not in the snapshot
        shown = frozenset(shown)
        budget = [_REPR_DEPS_LIMIT]
        deps = []
        for key, item in zip(keys, flat[1::2]):
            dep = _repr_deps(item, budget) if key in shown else EMPTY
            if dep is None:
                return None
            deps += (EMPTY, dep)  # the key's, then the value's: items are (key, value, ...)
        return Node(fields_of, value, size, flat, [], deps, [], text)

    return node_of


def exception_text(exc: BaseException) -> str:
    """`ExcType: message`, calling `__str__` only where it is not user code."""
    to_text = type(exc).__str__
    if isinstance(to_text, types.FunctionType):
        to_text = BaseException.__str__  # overridden in Python: the plain args instead
    try:
        message = to_text(exc)
    except Exception:
        message = ""
    name = type(exc).__qualname__
    return "%s: %s" % (name, message) if message else name


_snapshot_len.snapshot_kind = SNAPSHOT_LEN
_snapshot_tuple.snapshot_kind = SNAPSHOT_TUPLE
_snapshot_nothing.snapshot_kind = SNAPSHOT_NOTHING
