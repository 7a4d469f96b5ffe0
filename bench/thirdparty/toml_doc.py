"""Real work in a real pure-Python library: `tomli` parses a generated TOML document.

    python toml_doc.py [TABLES]      (default 150 tables, about 45 KB of TOML)

Install tomli as pure Python (`pip install --no-binary tomli tomli`): its wheels for
CPython are compiled with mypyc, and compiled code is invisible to any recorder.
The harness checks this and skips the workload otherwise."""
import hashlib
import sys

import tomli

TABLE = '''
[servers.node{i}]
name = "node-{i}"
ip = "10.0.{a}.{b}"
port = {port}
enabled = {enabled}
weight = {weight}
tags = ["web", "zone-{zone}", "rack-{b}"]
created = 2024-01-{day:02d}T12:{minute:02d}:00Z
limits = {{ cpu = {a}, memory = "{b}Gi", burst = {enabled} }}
description = """
Multi-line description of node {i},
with "quotes" and a tab\\t escape."""
path = 'C:\\data\\node{i}'

[[servers.node{i}.checks]]
kind = "http"
interval = {port}

[[servers.node{i}.checks]]
kind = "tcp"
interval = 1_000
'''


def build(tables):
    parts = ['title = "generated"\n', "version = 3\n"]
    for i in range(tables):
        parts.append(TABLE.format(i=i, a=i % 256, b=(i * 7) % 256, port=8000 + i,
                                  enabled=str(i % 2 == 0).lower(), weight=i / 8, zone=i % 5,
                                  day=1 + i % 28, minute=i % 60))
    return "".join(parts)


def main():
    tables = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    text = build(tables)
    data = tomli.loads(text)
    digest = hashlib.sha256(repr(sorted(data["servers"])).encode()).hexdigest()[:16]
    print(len(text), len(data["servers"]), digest)


main()
