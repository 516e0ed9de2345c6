#!/usr/bin/env python3
"""Fails on a broken section reference between README.md, docs/DESIGN.md and docs/FORMAT.md
(and the source comments that cite them): every `DESIGN §N`, `FORMAT.md §N`, a bare `§N` inside
DESIGN.md or FORMAT.md (its own sections), and every Markdown link to `#anchor` of the three
must name a heading that exists. Run by scripts/test.sh; prints each broken reference."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
DOCS = {"README": "README.md", "DESIGN": "docs/DESIGN.md", "FORMAT": "docs/FORMAT.md"}


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def outside_code(text):
    """The text with fenced code blocks blanked (line numbers kept)."""
    out, fenced = [], False
    for line in text.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return out


def slug(title):
    s = title.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


sections, anchors = {}, {}
for name, rel in DOCS.items():
    nums, slugs = set(), set()
    for line in outside_code(read(rel)):
        m = re.match(r"^(#+)\s+(.*)$", line)
        if not m:
            continue
        title = m.group(2)
        slugs.add(slug(title))
        n = re.match(r"(\d+[a-z]?)\.\s", title)
        if n:
            nums.add(n.group(1))
    sections[name], anchors[rel] = nums, slugs

REF = re.compile(r"(?:docs/)?(DESIGN|FORMAT)(?:\.md)?\)?,? ?§(\d+[a-z]?)")
BARE = re.compile(r"(?<![A-Z.)] )(?<![A-Z])§(\d+[a-z]?)")
LINK = re.compile(r"\]\(((?:docs/)?(?:README|DESIGN|FORMAT)\.md)?#([^)]+)\)")

broken = []


def check_text(rel, lines, own):
    for i, line in enumerate(lines, 1):
        spans = []
        for m in REF.finditer(line):
            spans.append(m.span())
            if m.group(2) not in sections[m.group(1)]:
                broken.append(f"{rel}:{i}: {m.group(0)!r}: {m.group(1)} has no section {m.group(2)}")
        if own:
            for m in re.finditer(r"§(\d+[a-z]?)", line):
                if any(a <= m.start() < b for a, b in spans):
                    continue
                if m.group(1) not in sections[own]:
                    broken.append(f"{rel}:{i}: '§{m.group(1)}': {own} has no section {m.group(1)}")
        for m in LINK.finditer(line):
            target = m.group(1) or rel
            target = target if target.startswith("docs/") or target == "README.md" else "docs/" + target
            if rel.startswith("docs/") and m.group(1) and not m.group(1).startswith("docs/"):
                target = "docs/" + os.path.basename(m.group(1)) if m.group(1) != "README.md" else "README.md"
            if target in anchors and m.group(2) not in anchors[target]:
                broken.append(f"{rel}:{i}: link to {target}#{m.group(2)}: no such heading")


for name, rel in DOCS.items():
    check_text(rel, outside_code(read(rel)), name if name != "README" else None)

for dirpath, _, files in os.walk(os.path.join(ROOT, "src")):
    for f in files:
        if f.endswith(".rs"):
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, ROOT)
            check_text(rel, read(rel).split("\n"), None)

for b in broken:
    print(b)
if broken:
    print(f"{len(broken)} broken section references")
    sys.exit(1)
print("section references between README, DESIGN, FORMAT and the sources: all resolve")
