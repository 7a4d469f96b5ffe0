"""A return value that the returning function (or a caller) also shows is re-encoded from that
encoding (Recorder.leave): the Return must still show the value as it is when returned,
whatever changed in it since the last step showed it."""
from __future__ import annotations

import textwrap


def test_a_returned_object_changed_since_the_last_step_is_shown_as_returned(record, backend, core, tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent("""
        class Box:
            def __init__(self):
                self.items = [1]

        def grow(items):
            items.append(2)
            return items.append(3) or items      # changed after this line's step showed it

        def fill(box):
            box.items.append("a")
            return box.items.append("b") or box  # the caller shows the box too

        def same(items):
            return items                         # unchanged

        box = Box()
        numbers = grow([0])
        print(numbers, fill(box).items, same(numbers))
    """).lstrip("\n"))
    rec = record(prog, env={**backend, **core})
    assert rec.stdout == "[0, 2, 3] [1, 'a', 'b'] [0, 2, 3]\n"
    view = rec.view
    (grow,) = view.calls_of("grow")
    assert grow.returned == [0, 2, 3]
    (fill,) = view.calls_of("fill")
    assert fill.returned == {"__type__": "Box", "items": [1, "a", "b"]}
    (same,) = view.calls_of("same")
    assert same.returned == [0, 2, 3]
