"""Value encoder: Python objects -> CodeTracer `Value` JSON text (trace-format.md section 3).

Encoding goes straight to JSON text, one small string per value, because the recorder
snapshots every visible variable at every step and building dicts for `json.dumps` costs
several times more.  Types are interned through a `TypeTable`, which emits the `Type`
definition event the first time a type is used (define before use).

Recording never calls user code other than `__repr__` of otherwise unknown objects:
user-class instances are read through `__dict__` and slot descriptors, containers through
the base-class C methods, so an overridden `__iter__`, `__getattr__` or `items` never runs.
"""
from __future__ import annotations

import base64
import enum
import json
import sys
import time
import types
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
            tid = len(self._ids)
            self._ids[key] = tid
            self._emit('{"Type":{"kind":%d,"lang_type":%s,"specific_info":%s}}'
                       % (kind, _escape(lang_type), specific_info))
        return tid

    def __len__(self) -> int:
        return len(self._ids)


def _type_name(tp: type) -> str:
    name = tp.__qualname__ if isinstance(getattr(tp, "__qualname__", None), str) else tp.__name__
    return name


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
    the fields of Struct values.  Counters of redacted/dropped attributes are kept here.
    """

    def __init__(self, types_: TypeTable, *, max_depth: int = 3, max_items: int = 50,
                 max_string: int = 1000, attr_action: Callable[[str], str] | None = None):
        self.types = types_
        self.max_depth = max_depth
        self.max_items = max_items
        self.max_string = max_string
        self.attr_action = attr_action or (lambda name: "allow")
        self.attr_redactions = 0
        self.attr_drops = 0
        self._by_type: dict[type, Callable[[object, int], str]] = {}
        self._type_ids: dict[object, int] = {}
        self._struct_types: dict[tuple, int] = {}
        self._slow_repr_types: set[type] = set()
        self._active: set[int] = set()
        self.in_repr = False
        # While encode_tracked() runs: the mutable containers/objects the text depends on,
        # as (snapshot function, object, size, shown items), and whether the text can change
        # without any of them changing (a repr can): see encode_tracked / still_valid.
        self.deps: list | None = None
        self.volatile = False
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
            int: self._int,
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

    def encode_tracked(self, value: object) -> tuple[str, list | None]:
        """Encode `value` and return (text, deps); deps is None when the text may change
        without anything we can check changing (then it must not be reused)."""
        self.deps = deps = []
        self.volatile = False
        try:
            text = self.encode(value)
        finally:
            self.deps = None
        return text, (None if self.volatile else deps)

    @staticmethod
    def still_valid(deps: list) -> bool:
        """True when every container/object an encoding depends on still holds the same
        objects (compared by identity at C speed: never calls user `__eq__`)."""
        for snapshot, obj, size, items in deps:
            now_size, now_items = snapshot(obj)
            if now_size != size or len(now_items) != len(items) or not all(map(is_, now_items, items)):
                return False
        return True

    def _track(self, snapshot, obj: object, size: int, items: tuple) -> None:
        deps = self.deps
        if deps is not None:
            deps.append((snapshot, obj, size, items))

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

    def _summary(self, value: object, lang_type: str) -> str:
        # Past the depth bound a container is shown by its size only.
        try:
            size = len(value)  # type: ignore[arg-type]
        except Exception:
            self.volatile = True
            return self.raw("<%s>" % lang_type, lang_type)
        if not isinstance(value, tuple):
            self._track(_snapshot_len, value, size, ())
        return self.raw("<%s of %d items>" % (lang_type, size), lang_type)

    def _more(self, hidden: int) -> str:
        return self.raw("<+%d more>" % hidden, "<truncated>")

    # -- scalars -------------------------------------------------------------------------

    def _none(self, value: object, depth: int) -> str:
        return NONE_TEXT

    def _bool(self, value: object, depth: int) -> str:
        return self._true if value else self._false

    def _int(self, value, depth: int) -> str:
        if I64_MIN <= value <= I64_MAX:
            return '{"kind":"Int","i":' + int.__repr__(value) + self._int_suffix
        return self._bigint(value, "int")

    def _bigint(self, value: int, lang_type: str) -> str:
        magnitude = -value if value < 0 else value
        data = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        return '{"kind":"BigInt","b":"%s","negative":%s,"type_id":%d}' % (
            base64.b64encode(data).decode("ascii"), "true" if value < 0 else "false",
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
            self.volatile = True  # a bytearray changes in place
        shown = bytes(value[:self.max_string])
        text = repr(shown)
        if len(value) > self.max_string:
            text += "...<+%d bytes>" % (len(value) - self.max_string)
        return self.raw(text, type(value).__name__)

    # -- containers ----------------------------------------------------------------------

    def _elements(self, shown: tuple, size: int, depth: int) -> str:
        encode = self.encode
        parts = [encode(item, depth) for item in shown]
        if size > len(shown):
            parts.append(self._more(size - len(shown)))
        return ",".join(parts)

    def _sequence(self, value, snapshot, lang_type: str, kind: int, depth: int) -> str:
        if depth >= self.max_depth:
            return self._summary(value, lang_type)
        key = id(value)
        if key in self._active:
            return self.error("<cycle>", lang_type)
        # Copy the shown items in one C call first: encoding runs Python code, during which
        # another thread may mutate the container ("changed size during iteration").
        size, shown = snapshot(value)
        self._track(snapshot, value, size, shown)
        self._active.add(key)
        try:
            body = self._elements(shown, size, depth + 1)
        finally:
            self._active.discard(key)
        return '{"kind":"Sequence","elements":[%s],"is_slice":false,"type_id":%d}' % (
            body, self._tid(kind, lang_type))

    def _list(self, value, depth: int) -> str:
        return self._sequence(value, self._snapshot_list, type(value).__name__, KIND_SEQ, depth)

    def _set(self, value, depth: int) -> str:
        snapshot = self._snapshot_set if isinstance(value, set) else self._snapshot_frozenset
        return self._sequence(value, snapshot, type(value).__name__, KIND_HASHSET, depth)

    def _deque(self, value, depth: int) -> str:
        return self._sequence(value, self._snapshot_deque, type(value).__name__, KIND_SEQ, depth)

    def _tuple(self, value, depth: int) -> str:
        lang_type = type(value).__name__
        if depth >= self.max_depth:
            return self._summary(value, lang_type)
        key = id(value)
        if key in self._active:
            return self.error("<cycle>", lang_type)
        self._active.add(key)
        try:
            shown = tuple(islice(tuple.__iter__(value), self.max_items))
            body = self._elements(shown, tuple.__len__(value), depth + 1)
        finally:
            self._active.discard(key)
        return '{"kind":"Tuple","elements":[%s],"type_id":%d}' % (body, self._tid(KIND_TUPLE, lang_type))

    def _dict(self, value, depth: int) -> str:
        lang_type = type(value).__name__
        if depth >= self.max_depth:
            return self._summary(value, lang_type)
        key = id(value)
        if key in self._active:
            return self.error("<cycle>", lang_type)
        size, flat = self._snapshot_dict(value)  # one C call: see _sequence
        self._track(self._snapshot_dict, value, size, flat)
        self._active.add(key)
        try:
            encode = self.encode
            inner = depth + 2
            pair_tid = self._tid(KIND_TUPLE, "tuple")
            pairs = zip(flat[0::2], flat[1::2])
            parts = ['{"kind":"Tuple","elements":[%s,%s],"type_id":%d}'
                     % (encode(k, inner), encode(v, inner), pair_tid) for k, v in pairs]
            shown = len(flat) // 2
            if size > shown:
                parts.append(self._more(size - shown))
        finally:
            self._active.discard(key)
        return '{"kind":"Sequence","elements":[%s],"is_slice":false,"type_id":%d}' % (
            ",".join(parts), self._tid(KIND_SEQ, lang_type))

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
        elif not _is_stdlib_type(tp) and (tp.__dictoffset__ != 0 or _slot_descriptors(tp)):
            fields_of = _fields_reader(tp)
            fn = lambda v, d: self._struct(v, d, tp, fields_of)  # noqa: E731
        else:
            fn = self._repr
        self._by_type[tp] = fn
        return fn

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
        fields = [(name, tuple.__getitem__(value, i)) for i, name in enumerate(tp._fields)
                  if i < tuple.__len__(value)]
        return self._struct_from_fields(value, depth, tp, fields)

    def _struct(self, value, depth: int, tp: type, fields_of) -> str:
        if depth >= self.max_depth:
            return self.raw("<%s object>" % tp.__name__, tp.__name__, KIND_STRUCT)
        size, flat = fields_of(value)
        self._track(fields_of, value, size, flat)
        return self._struct_from_fields(value, depth, tp, zip(flat[0::2], flat[1::2]))

    def _struct_from_fields(self, value, depth: int, tp: type, fields) -> str:
        lang_type = tp.__name__
        if depth >= self.max_depth:
            return self.raw("<%s object>" % lang_type, lang_type, KIND_STRUCT)
        key = id(value)
        if key in self._active:
            return self.error("<cycle>", lang_type)
        action = self.attr_action
        names = []
        parts = []
        hidden = 0
        self._active.add(key)
        try:
            for name, field in fields:
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
                    parts.append(self.encode(field, depth + 1))
        finally:
            self._active.discard(key)
        if hidden:
            names.append("...")
            parts.append(self._more(hidden))
        tid = self._struct_type(tp, lang_type, tuple(names))
        return '{"kind":"Struct","field_values":[%s],"type_id":%d}' % (",".join(parts), tid)

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
        self.volatile = True  # a repr can change while the object stays the same
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
        return self.raw(text, lang_type)


# -- shallow snapshots -------------------------------------------------------------------------
# (size, shown items) of a container, taken in one C call.  The encoder shows at most
# `limit` items, and they are what an encoding depends on; see ValueEncoder.still_valid.

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

    return of_list, of_set, of_frozenset, of_deque, of_dict


def _snapshot_len(value) -> tuple[int, tuple]:
    return len(value), ()


def _fields_reader(tp: type):
    """A snapshot function for instances of a user class: (count, name0, value0, ...),
    read from `__dict__` and slot descriptors (never through `__getattr__`)."""
    slots = _slot_descriptors(tp)
    has_dict = tp.__dictoffset__ != 0

    def fields_of(value) -> tuple[int, tuple]:
        flat: tuple = ()
        if has_dict:
            try:
                attrs = object.__getattribute__(value, "__dict__")
            except Exception:
                attrs = None
            if type(attrs) is dict:
                flat = tuple(chain.from_iterable(dict.items(attrs)))
        for name, descriptor in slots:
            try:
                flat += (name, descriptor.__get__(value, tp))
            except AttributeError:
                pass  # an unset slot is not an attribute yet
        return len(flat) // 2, flat

    return fields_of


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
