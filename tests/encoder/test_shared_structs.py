"""A Struct encoded in one place is reused, when still exact, where it shows up next without a
hint of its own (a method's `self` in a new frame, an object reached again from another one).

The reused text must be exactly a fresh encoding's, wherever it lands: at another depth it is
not reused, a text with a "<cycle>" is never reused, and neither is one that shows expanded an
object being encoded around the new place (there a fresh encoding writes "<cycle>").  The
encoder holds the shared Nodes weakly: sharing keeps no object of the program alive.
"""
from __future__ import annotations

import gc
import re
import weakref
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_reencoding import NODE_CHECKS, Plain, Slotted, make_encoder, mutate, random_program

from rewind import encoder as encoder_module
from rewind.encoder import Node, TypeTable, ValueEncoder

PAD = "x" * 600  # makes a Struct large enough to be shared (SHARED_MIN_CHARS)


def reference_encoder(**bounds) -> ValueEncoder:
    """An encoder that never shares: its attribute scope is a new object at every call, so no
    two places ever have the same key."""
    defined: list[str] = []
    encoder = ValueEncoder(TypeTable(defined.append), attr_scope=object, **bounds)
    encoder.defined_types = defined
    return encoder


def canonical(text: str, encoder: ValueEncoder) -> str:
    """`text` with each type id replaced by its Type event: encoders that met the types in
    another order write the same canonical text for the same value."""
    def resolve(match) -> str:  # a Struct's Type event names its fields' types by id too
        return '"type":' + canonical(encoder.defined_types[int(match.group(1))], encoder)

    return re.sub(r'"type_id":(\d+)', resolve, text)


def assert_fresh(text: str, encoder: ValueEncoder, value, **bounds) -> None:
    """`text`, written by `encoder`, is what an encoder that never shares writes for `value`."""
    ref = reference_encoder(**bounds)
    assert canonical(text, encoder) == canonical(ref.encode(value), ref)


def test_a_struct_seen_again_without_a_hint_reuses_its_node():
    shared = Plain(name="processor", pad=PAD, options={"a": 1})
    encoder = make_encoder()
    text, node = encoder.encode_tracked(shared)
    again, same = encoder.encode_tracked(shared)  # no hint: a new frame's first sight of it
    assert same is node and again is text
    # A change inside it: re-encoded from the shared Node, and exact.
    shared.options["b"] = 2
    changed, new_node = encoder.encode_tracked(shared)
    assert new_node is not node and '"b"' in changed
    assert_fresh(changed, encoder, shared)


def test_a_small_struct_is_not_shared():
    small = Plain(a=1)
    encoder = make_encoder()
    _, node = encoder.encode_tracked(small)
    assert encoder.encode_tracked(small)[1] is not node


def test_the_same_struct_at_another_depth_is_encoded_for_that_depth():
    inner = Plain(items=[[1, 2], [3]], pad=PAD)
    encoder = make_encoder()
    _, node = encoder.encode_tracked(inner)  # depth 0: the nested lists are shown
    text, _ = encoder.encode_tracked([inner])  # depth 1: the inner lists are past the bound
    assert_fresh(text, encoder, [inner])
    assert "<list of 2 items>" in text


def test_a_text_that_shows_an_object_being_encoded_around_it_is_not_reused():
    # x shows y expanded; reused inside y, a fresh encoding would show y as a <cycle> there.
    x, y = Plain(pad=PAD), Plain(pad=PAD)
    x.friend = y
    y.holder = x
    encoder = make_encoder()
    # x at depth 1, its field y at depth 2: expanded, no cycle.  A frame holds that list's Node.
    _, held = encoder.encode_tracked([x])
    text, _ = encoder.encode_tracked(y)  # y at depth 0, x at depth 1, then y again: a cycle
    assert_fresh(text, encoder, y)
    assert "<cycle>" in text


def test_a_text_with_a_cycle_is_never_shared():
    a = Plain(pad=PAD)
    a.me = a  # shown as <cycle> inside a
    encoder = make_encoder()
    text, node = encoder.encode_tracked(a)
    assert "<cycle>" in text and node.cyclic
    assert encoder.encode_tracked(a)[1] is not node
    holder = [a]
    text, _ = encoder.encode_tracked(holder)
    assert_fresh(text, encoder, holder)


def test_a_struct_refreshed_from_a_text_with_a_cycle_is_not_shared_either():
    # x shows y, which is around it, as a <cycle>; x changes, its text is refreshed from the
    # old one and keeps that <cycle>: still exact only around y.
    x, y = Plain(pad=PAD, counter=0), Plain(pad=PAD)
    x.friend = y
    y.holder = x
    encoder = make_encoder()
    text, held = encoder.encode_tracked(y)
    assert "<cycle>" in text
    x.counter = 1
    text, held = encoder.encode_tracked(y, held)
    assert_fresh(text, encoder, y)
    elsewhere, _ = encoder.encode_tracked([x])  # x at the same depth, y not around it: shown
    assert_fresh(elsewhere, encoder, [x])
    assert "<cycle>" not in elsewhere


def test_sharing_keeps_nothing_alive():
    obj = Plain(pad=PAD, child=Plain(pad=PAD))
    gone = weakref.ref(obj)
    encoder = make_encoder()
    _, node = encoder.encode_tracked(obj)
    assert encoder._shared
    encoder.encode_tracked([1])  # the encoder remembers its last Node until the next value
    del node, obj
    gc.collect()
    assert gone() is None  # the encoder held its Node weakly, and so the object is gone
    assert all(ref() is None for ref in encoder._shared.values())


def test_attribute_rules_of_another_scope_are_not_mixed():
    scope = ["public"]
    actions = {"public": lambda name: "allow", "private": lambda name: "redact" if name == "token" else "allow"}
    defined: list[str] = []
    encoder = ValueEncoder(TypeTable(defined.append), attr_action=lambda name: actions[scope[0]](name),
                           attr_scope=lambda: scope[0])
    client = Plain(token="s3cret", pad=PAD)
    shown, node = encoder.encode_tracked(client)
    scope[0] = "private"
    hidden, other = encoder.encode_tracked(client)
    assert "s3cret" in shown and "s3cret" not in hidden and "<redacted>" in hidden and other is not node
    scope[0] = "public"
    assert encoder.encode_tracked(client)[1] is node


# -- random programs ---------------------------------------------------------------------------

@pytest.mark.parametrize("node_check", NODE_CHECKS)
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), max_depth=st.integers(1, 5), max_items=st.integers(1, 6))
def test_shared_structs_match_a_fresh_encoding_wherever_they_land(node_check, seed, max_depth, max_items):
    rng, pool, root = random_program(seed)
    structs = [v for v in pool if isinstance(v, (Plain, Slotted))]
    bounds = {"max_depth": max_depth, "max_items": max_items, "max_string": 8}
    encoder = make_encoder(node_check, **bounds)
    frames: list = []  # the Nodes "frames" still hold: only those can be shared
    with mock.patch.object(encoder_module, "SHARED_MIN_CHARS", 0):  # share every Struct
        for _ in range(16):
            if rng.random() < 0.5:
                mutate(rng, pool, root)
            if len(structs) >= 2 and rng.random() < 0.3:
                # Two objects that show each other: a place around one is inside the other.
                first, second = rng.sample(structs, 2)
                link(first, second)
                link(second, first)
            # A value from the program, in a new place: alone, or inside one of its containers
            # or objects (around it: objects that may show up inside it, i.e. cycles).
            value = rng.choice(structs or pool)
            place = rng.choice([value, [value], {"k": value}, Plain(v=value), rng.choice(pool)])
            text, node = encoder.encode_tracked(place)
            assert_fresh(text, encoder, place, **bounds)
            if isinstance(node, Node) and rng.random() < 0.8:
                frames.append(node)
            if frames and rng.random() < 0.3:
                frames.pop(rng.randrange(len(frames)))  # a frame returns: its Nodes go


def link(source, target) -> None:
    if isinstance(source, Slotted):
        source.a = target
    else:
        source.link = target
