"""Re-encoding with a hint (encoder.Node) must give exactly the text of a fresh encoding.

The recorder passes the Node of a variable's last encoding back to the encoder at the next
step; the encoder then re-encodes only what changed.  These tests mutate nested values in
every way a program can (in place, deep inside, past the item and depth bounds, cycles,
class reassignment) and compare each re-encoding with a fresh encoder's text.
"""
from __future__ import annotations

import argparse
import array
import functools
import os
import random
import xml.etree.ElementTree as ET
from collections import deque, namedtuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind.encoder import EMPTY, Node, TypeTable, ValueEncoder, _unchanged

try:  # the accelerator's node check, where it is built (accelerator/_nodes.c)
    from rewind.accelerator import _nodes
except ImportError:
    _nodes = None
else:
    _nodes.configure(EMPTY, Node)

# Every re-encoding test runs with the pure-Python node check and, where built, the C one.
NODE_CHECKS = ["python"] + (["c"] if _nodes is not None else [])


class Plain:
    def __init__(self, **fields):
        self.__dict__.update(fields)


class Other:
    pass


class Slotted:
    __slots__ = ("a", "b")


class SlottedWithDict(Slotted):  # slots and a __dict__: attributes come from both
    pass


Pair = namedtuple("Pair", "left right")


def make_encoder(node_check: str = "python", **bounds) -> ValueEncoder:
    defined: list[str] = []
    encoder = ValueEncoder(TypeTable(defined.append), **bounds)
    if node_check == "c":
        encoder.use_node_check(_nodes.unchanged, _nodes.stale_positions)
    encoder.defined_types = defined  # the Type events it emitted, for the tests to read
    return encoder


def fresh_text(value, **bounds) -> str:
    return make_encoder(**bounds).encode(value)


def test_an_unchanged_value_gives_back_its_node():
    accounts = {"a": Plain(balance=1, history=[1, 2]), "b": Plain(balance=2, history=[])}
    encoder = make_encoder()
    text, node = encoder.encode_tracked(accounts)
    assert isinstance(node, Node)
    again, same = encoder.encode_tracked(accounts, node)
    assert same is node and again is text


def test_a_change_deep_inside_is_seen():
    accounts = {"a": Plain(balance=1, history=[1, 2]), "b": Plain(balance=2, history=[])}
    encoder = make_encoder()
    text, node = encoder.encode_tracked(accounts)
    accounts["b"].history.append(("deposit", 5))
    changed, new_node = encoder.encode_tracked(accounts, node)
    assert new_node is not node
    assert changed == fresh_text(accounts) != text
    assert "<list of 1 item>" in changed  # history sits at the depth bound: shown by its size
    # The unchanged account kept its text object: it was not encoded again.
    assert new_node.texts[1] is node.texts[1]


def test_immutable_values_need_no_node():
    encoder = make_encoder()
    for value in (1, "s", (1, ("a", 2.5)), None, frozenset({1}) and (1,)):
        assert encoder.encode_tracked(value)[1] is EMPTY


def test_a_value_shown_by_repr_is_shown_afresh_every_time():
    # array.array is a stdlib type the encoder shows by its repr, which can change in place.
    numbers = array.array("i", [1])
    holder = [numbers]
    encoder = make_encoder()
    text, node = encoder.encode_tracked(holder)
    numbers.append(2)
    again, _ = encoder.encode_tracked(holder, node)
    assert again != text and "array('i', [1, 2])" in again


def test_class_reassignment_changes_the_struct_type():
    obj = Plain(a=1)
    encoder = make_encoder()
    holder = [obj]
    _, node = encoder.encode_tracked(holder)
    obj.__class__ = Other
    text, _ = encoder.encode_tracked(holder, node)
    assert text == encoder.encode_tracked(holder)[0]  # the same encoder without a hint
    struct_type_id = int(text.rsplit('"type_id":', 2)[1].split("}")[0])
    assert '"lang_type":"Other"' in encoder.defined_types[struct_type_id]


# -- random programs ---------------------------------------------------------------------------

def build(rng: random.Random, depth: int, pool: list):
    """A random nested value; every container made is added to `pool` (targets of mutations)."""
    kind = rng.randrange(12) if depth < 4 else rng.randrange(3)
    if kind == 0:
        return rng.choice([0, 1, -7, 2**70, 3.5, "x", "long" * 3, b"by", None, True])
    if kind == 1:
        return rng.randrange(100)
    if kind == 2:
        return rng.choice(["a", "b", "c"]) * rng.randrange(1, 4)
    if kind == 3:
        value = [build(rng, depth + 1, pool) for _ in range(rng.randrange(5))]
    elif kind == 4:
        value = {rng.choice("abcdef"): build(rng, depth + 1, pool) for _ in range(rng.randrange(5))}
    elif kind == 5:
        value = tuple(build(rng, depth + 1, pool) for _ in range(rng.randrange(4)))
    elif kind == 6:
        value = Plain(**{rng.choice("pqrs"): build(rng, depth + 1, pool) for _ in range(rng.randrange(4))})
    elif kind == 7:
        value = rng.choice([Slotted, SlottedWithDict])()
        if type(value) is SlottedWithDict and rng.random() < 0.7:
            value.c = build(rng, depth + 1, pool)
        if rng.random() < 0.8:
            value.a = build(rng, depth + 1, pool)
        if rng.random() < 0.5:
            value.b = build(rng, depth + 1, pool)
    elif kind == 8:
        value = Pair(build(rng, depth + 1, pool), build(rng, depth + 1, pool))
    elif kind == 10:
        value = ET.Element(rng.choice(["p", "em"]))  # shown by a repr that depends on its tag
    elif kind == 11:  # shown by a repr made of its attributes' reprs
        value = argparse.Namespace(**{rng.choice("pqrs"): build(rng, depth + 1, pool) for _ in range(rng.randrange(4))})
    else:
        value = rng.choice([set, deque, frozenset])(rng.randrange(50) for _ in range(rng.randrange(4)))
    pool.append(value)
    return value


def random_program(seed: int) -> tuple[random.Random, list, list]:
    """(rng, pool, root): three random values in a list, and every container made (the pool)."""
    rng = random.Random(seed)
    pool: list = []
    root = [build(rng, 0, pool) for _ in range(3)]
    pool.append(root)
    return rng, pool, root


def mutate(rng: random.Random, pool: list, root) -> None:
    target = rng.choice(pool)
    new = build(rng, 3, pool)
    if isinstance(target, list):
        choice = rng.randrange(5)
        if choice == 0 or not target:
            target.append(new)
        elif choice == 1:
            target[rng.randrange(len(target))] = new
        elif choice == 2:
            del target[rng.randrange(len(target))]
        elif choice == 3:
            target.append(target)  # a cycle
        else:
            target.append(root)
    elif isinstance(target, dict):
        choice = rng.randrange(3)
        if choice == 0 or not target:
            target[rng.choice("abcdefgh")] = new
        elif choice == 1:
            del target[rng.choice(list(target))]
        else:
            target[rng.choice(list(target))] = target
    elif isinstance(target, Plain):
        choice = rng.randrange(4)
        if choice == 0:
            setattr(target, rng.choice("pqrst"), new)
        elif choice == 1 and target.__dict__:
            delattr(target, rng.choice(list(target.__dict__)))
        elif choice == 2:
            target.__class__ = Other
        else:
            target.__dict__ = {"replaced": new}
    elif isinstance(target, Other):
        target.__class__ = Plain
    elif isinstance(target, Slotted):
        if type(target) is SlottedWithDict and rng.random() < 0.3:
            setattr(target, rng.choice("cd"), new)  # an attribute in its __dict__
        elif rng.random() < 0.7:
            setattr(target, rng.choice("ab"), new)
        elif hasattr(target, "a"):
            del target.a
    elif isinstance(target, set):
        target.add(rng.randrange(60)) if rng.random() < 0.6 or not target else target.pop()
    elif isinstance(target, deque):
        target.appendleft(new) if rng.random() < 0.6 or not target else target.pop()
    elif isinstance(target, argparse.Namespace):
        if rng.random() < 0.7 or not vars(target):
            setattr(target, rng.choice("pqrst"), new)
        else:
            delattr(target, rng.choice(list(vars(target))))
    elif isinstance(target, ET.Element):
        target.tag = rng.choice(["p", "em", "strong", 7])  # a str, or a tag that is not one
    # tuples, namedtuples and frozensets are immutable: nothing to do


@pytest.mark.parametrize("node_check", NODE_CHECKS)
@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 2**32), max_depth=st.integers(1, 5), max_items=st.integers(1, 6))
def test_reencoding_matches_a_fresh_encoding(node_check, seed, max_depth, max_items):
    rng, pool, root = random_program(seed)
    bounds = {"max_depth": max_depth, "max_items": max_items, "max_string": 8}
    encoder = make_encoder(node_check, **bounds)
    text, node = encoder.encode_tracked(root)
    assert text == fresh_text(root, **bounds)
    for _ in range(12):
        if rng.random() < 0.8:
            mutate(rng, pool, root)
        hint = node if isinstance(node, Node) else None
        if hint is not None and _nodes is not None:
            assert _nodes.unchanged(hint) == _unchanged(hint)  # the two checks agree on every node
            if isinstance(root, list):
                shown = tuple(root)
                assert _nodes.stale_positions(shown, hint.items, hint.deps) == \
                    encoder._stale_positions(shown, hint.items, hint.deps)
        text, node = encoder.encode_tracked(root, hint)
        # A fresh encoder interns types in another order: compare with one that saw the
        # same types first, by encoding with the same encoder and no hint.
        assert text == encoder.encode_tracked(root)[0]


@pytest.mark.skipif(_nodes is None, reason="the C accelerator is not built (accelerator/_nodes.c)")
def test_the_c_node_check_agrees_on_each_kind_of_change():
    deque_value = deque([1, 2])
    values = [[1, 2], {"a": [1]}, {1, 2}, frozenset({3}), deque_value, (1, [2]), Plain(a=1), Pair(1, [2]),
              ET.Element("p"), argparse.Namespace(a=[1, (2, {"k": [3]})], b="s"), Slotted(), SlottedWithDict()]
    values[-2].a = [1]
    values[-1].b, values[-1].c = [2], [3]
    for value in values:
        encoder = make_encoder("python", max_depth=3, max_items=5)
        _, node = encoder.encode_tracked([value])
        assert _nodes.unchanged(node) is True and _unchanged(node) is True
    items = [1, 2]
    encoder = make_encoder("python")
    _, node = encoder.encode_tracked({"k": Plain(items=items)})
    items.append(3)
    assert _nodes.unchanged(node) is False and _unchanged(node) is False


def test_immutable_stdlib_values_shown_by_repr_are_reused_on_identity():
    import datetime
    import decimal
    import re

    encoder = make_encoder()
    for value in (range(3), re.compile("a+"), decimal.Decimal("1.5"), datetime.date(2020, 1, 2), 3 + 4j):
        assert encoder.encode_tracked(value)[1] is EMPTY, type(value)
    # a datetime may carry a tzinfo of any class: its repr is computed again every time
    assert encoder.encode_tracked(datetime.datetime(2020, 1, 2))[1] is None


def test_an_element_repr_is_taken_again_only_when_its_tag_changes():
    # <Element 'p' at 0x...>: the class, the identity and the tag; markdown's trees are these
    for node_check in NODE_CHECKS:
        encoder = make_encoder(node_check)
        paragraph, bold = ET.Element("p"), ET.Element("b")
        tree = {"children": [paragraph, bold]}
        text, node = encoder.encode_tracked(tree)
        assert encoder.unchanged(node)
        paragraph.text = "body"  # not part of the repr
        assert encoder.unchanged(node)
        bold.tag = "strong"
        assert not encoder.unchanged(node)
        again, node = encoder.encode_tracked(tree, node)
        assert again == fresh_text(tree) and "<Element 'strong' at" in again
        bold.tag = 5  # a tag that is not a str: its repr could change with the same tag
        again, node = encoder.encode_tracked(tree, node)
        assert again == fresh_text(tree) and "<Element 5 at" in again
        assert encoder.encode_tracked(bold)[1] is None



def _python_element_class() -> type:
    """xml.etree.ElementTree.Element as the pure-Python module defines it (without the C
    accelerator _elementtree): its tag is an instance attribute, not a C getter."""
    import importlib
    import sys

    saved = {name: sys.modules.pop(name) for name in ("xml.etree.ElementTree", "_elementtree") if name in sys.modules}
    sys.modules["_elementtree"] = None  # makes the import fall back to the Python classes
    try:
        return importlib.import_module("xml.etree.ElementTree").Element
    finally:
        del sys.modules["_elementtree"]
        sys.modules.update(saved)


def test_the_python_element_repr_is_followed_like_the_c_one():
    element_class = _python_element_class()
    assert element_class is not ET.Element and not hasattr(vars(element_class)["tag"], "__get__")
    for node_check in NODE_CHECKS:
        encoder = make_encoder(node_check)
        item = element_class("p")
        tree = [item]
        text, node = encoder.encode_tracked(tree)
        assert "<Element 'p' at" in text and encoder.unchanged(node) and _unchanged(node)
        item.tag = "em"
        assert not encoder.unchanged(node) and not _unchanged(node)
        text, node = encoder.encode_tracked(tree, node)
        assert text == fresh_text(tree) and "<Element 'em' at" in text
        del item.tag  # reading it now fails: the repr must be taken again (and fails too)
        assert not encoder.unchanged(node) and not _unchanged(node)
        text, node = encoder.encode_tracked(tree, node)
        assert text == fresh_text(tree)


def test_a_namedtuple_is_followed_through_its_fields():
    for node_check in NODE_CHECKS:
        encoder = make_encoder(node_check)
        items = [1]
        pair = Pair("left", items)
        text, node = encoder.encode_tracked({"pair": pair})
        assert encoder.unchanged(node) and _unchanged(node)
        items.append(2)  # inside a field: the tuple's own items did not change
        assert not encoder.unchanged(node) and not _unchanged(node)
        text, node = encoder.encode_tracked({"pair": pair}, node)
        assert text == fresh_text({"pair": pair}) and encoder.unchanged(node)

def test_an_argparse_repr_is_taken_again_only_when_what_it_shows_changes():
    # Namespace(...) and the actions: the attributes' reprs, here lists, tuples and dicts of
    # scalars, which their Node tree follows item by item
    for node_check in NODE_CHECKS:
        encoder = make_encoder(node_check)
        options = argparse.Namespace(files=["a.py"], level=2, env={"k": ["v"]}, pair=(1, [2]))
        parser = argparse.ArgumentParser()
        action = parser.add_argument("--tag", default=["x"])
        # Functions and classes are shown by their names: what pytest's options hold
        typed = [parser.add_argument("--n", type=int), parser.add_argument("--path", type=os.path.abspath),
                 parser.add_argument("--low", type=str.lower), parser.add_argument("--hex", type=hex)]
        holder = [options, action, *typed]
        text, node = encoder.encode_tracked(holder)
        assert encoder.unchanged(node)
        changes = [(options.files.append, "b.py"), (options.env["k"].append, "w"), (options.pair[1].append, 3),
                   (setattr, options, "level", 3), (setattr, options, "new", None), (action.default.append, "y"),
                   (setattr, typed[0], "type", float)]
        for change, *args in changes:
            change(*args)
            assert not encoder.unchanged(node)
            text, node = encoder.encode_tracked(holder, node)
            assert text == fresh_text(holder)
            assert encoder.unchanged(node)
        action.container = None  # an attribute the action's repr does not show
        assert encoder.encode_tracked(holder, node)[0] == fresh_text(holder)
        options.obj = Plain(a=1)  # an object's repr is user code: taken at every step
        assert encoder.encode_tracked(options)[1] is None
        typed[0].type = functools.partial(int, base=2)  # a partial shows its arguments' reprs
        assert encoder.encode_tracked(typed[0])[1] is None


def test_objects_with_the_default_repr_are_reused_on_identity():
    import contextlib
    import pathlib
    import threading

    encoder = make_encoder()
    # `<contextlib.ExitStack object at 0x...>` depends on nothing but the class and the identity
    for value in (contextlib.ExitStack(), pathlib.PurePosixPath("/a/b"), property()):
        assert encoder.encode_tracked(value)[1] is EMPTY, type(value)
    # a custom repr shows state that can change in place
    for value in (argparse.Namespace(a=Plain(b=1)), threading.RLock()):
        assert encoder.encode_tracked(value)[1] is None, type(value)
