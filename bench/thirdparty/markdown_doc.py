"""Real work in a real pure-Python library: `markdown` renders a generated document.

    python markdown_doc.py [SECTIONS]      (default 40 sections, about 36 KB of Markdown)

The document mixes the constructs a README or a doc page has: headings, paragraphs with
emphasis, code spans and links, nested lists, block quotes, fenced and indented code, tables
(the `tables` and `fenced_code` extensions) and reference-style links."""
import hashlib
import sys

import markdown

SECTION = """
## Section {i}: notes on *component* `mod_{i}`

Paragraph {i} explains **why** the `handler_{i}` exists, links to [the docs](https://example.org/{i})
and to [a reference][ref{i}], and mentions _emphasis_, ``code with `ticks` inside`` and an
auto-link <https://example.org/auto/{i}>. Line breaks stay soft
so the paragraph spans several lines of source text.

- item one of list {i}
- item two with `code` and *emphasis*
    - nested item {i}.1
    - nested item {i}.2
- item three

1. first ordered
2. second ordered with a [link](http://example.com/{i})

> A quote about section {i}.
> It has **two** lines.

```python
def handler_{i}(event):
    return event.get("value", {i}) * 2
```

    indented code block {i}
    second line

| name | value | note |
|------|------:|------|
| a{i} | {i} | first |
| b{i} | {j} | second *row* |

[ref{i}]: https://example.org/ref/{i} "Reference {i}"
"""


def build(sections):
    return "# Generated document\n" + "".join(SECTION.format(i=i, j=i * 7) for i in range(sections))


def main():
    sections = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    text = build(sections)
    html = markdown.markdown(text, extensions=["tables", "fenced_code"])
    print(len(text), len(html), hashlib.sha256(html.encode()).hexdigest()[:16])


main()
