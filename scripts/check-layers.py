#!/usr/bin/env python3
"""Fails if the crate's top-level modules import each other in a cycle (issue 13: layers
that depend one way; docs/DESIGN.md §2 "Layers and cargo features"). An import is any
`crate::MODULE` path in a module's code (comments and `#[cfg(test)]` tails excluded). Prints
the import graph's cycles with the files that make each edge.

It also fails on a source file over MAX_LINES lines whose `//!` header does not say why it is
kept whole (a line starting `Kept whole:`): small files a newcomer can read are a rule of the
house (docs/DESIGN.md §2)."""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def code(text):
    cut = text.find("#[cfg(test)]")
    if cut >= 0:
        text = text[:cut]
    return "\n".join(l for l in text.split("\n") if not l.strip().startswith("//"))


tops = {f[:-3] if f.endswith(".rs") else f for f in os.listdir(SRC)} - {"lib", "main"}
edges = {}
for dirpath, _, files in os.walk(SRC):
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(dirpath, f)
        top = os.path.relpath(path, SRC).split(os.sep)[0].removesuffix(".rs")
        if top not in tops:
            continue
        with open(path, encoding="utf-8") as fh:
            text = code(fh.read())
        for m in re.finditer(r"crate::([a-z_]+)", text):
            if m.group(1) != top and m.group(1) in tops:
                edges.setdefault(top, {}).setdefault(m.group(1), set()).add(os.path.relpath(path, SRC))

index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]


def strong(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(edges.get(v, {})):
        if w not in index:
            strong(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            cycles.append(sorted(comp))


for v in sorted(tops):
    if v not in index:
        strong(v)
for comp in cycles:
    print("cycle:", " ".join(comp))
    for a in comp:
        for b in sorted(set(edges.get(a, {})) & set(comp)):
            print(f"   {a} -> {b}: {', '.join(sorted(edges[a][b]))}")
MAX_LINES = 500
long = []
for dirpath, _, files in os.walk(SRC):
    for f in files:
        if f.endswith(".rs"):
            path = os.path.join(dirpath, f)
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
            header = [l for l in lines if l.startswith("//!")]
            if len(lines) > MAX_LINES and not any(l.startswith("//! Kept whole:") for l in header):
                long.append((len(lines), os.path.relpath(path, SRC)))
for n, p in sorted(long, reverse=True):
    print(f"src/{p}: {n} lines (over {MAX_LINES}): split it, or say why in a `//! Kept whole:` line")
if cycles or long:
    sys.exit(1)
print(f"{len(tops)} top-level modules, {sum(len(e) for e in edges.values())} import edges, no cycle; no file over {MAX_LINES} lines")
