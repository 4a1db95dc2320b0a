#!/usr/bin/env python3
"""Checks that the source tree keeps its layers (README, "Layout").

Usage: scripts/check-layers.py [ROOT]      (ROOT defaults to the repository)

Rules, each failing with the file, the line and the rule it breaks:
  1. core/lib is in layer folders; a file includes headers of its own folder or of a layer
     listed before its own in LAYERS, never one listed after it, and never a sibling of the
     same rank (northbound and southbound do not know each other).
  2. Includes inside core/lib name their folder ("base/error.h"), so the layer of every arrow
     can be read from the line itself.
  3. The agent is a client of the node API: it includes no server layer (ONLY_CLIENT_MAY_NOT).
  4. No module include cycle: module A (A.c, A.h) includes B.h and B includes A.h, directly or
     through others, is refused anywhere under core/.
  5. No two headers under sdk/ and core/ share a basename, so which header an #include "x.h"
     means never depends on the include path.
Exit status: 0 when the tree keeps every rule, 1 when one is broken, 2 on a usage error.
"""
import os
import re
import sys

# The layers of core/lib, lowest first; a tuple is one rank of siblings.
LAYERS = [("base",), ("net",), ("runtime",), ("provisioning",), ("northbound", "southbound")]
# Programs and libraries above core/lib, and the core/lib folders they must not include.
ONLY_CLIENT_MAY_NOT = {"core/agent": ("northbound", "southbound")}
# Includes of generated code (the protobuf-c messages) that belong to no layer.
GENERATED_PREFIXES = ("edgeprov/v1/", "onboardingmgr/v1/")

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def rank_of(folder):
    for rank, names in enumerate(LAYERS):
        if folder in names:
            return rank
    return None


def source_files(top):
    for directory, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "build")
        for name in sorted(files):
            if name.endswith((".c", ".h")):
                yield os.path.join(directory, name)


def includes(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                yield number, m.group(1)


def check(root):
    problems = []
    lib = os.path.join(root, "core", "lib")
    if not os.path.isdir(lib):
        return ["%s: no core/lib folder" % root]

    def rel(path):
        return os.path.relpath(path, root)

    # Rules 1 and 2: the layer folders of core/lib.
    for path in source_files(lib):
        parts = os.path.relpath(path, lib).split(os.sep)
        if len(parts) != 2 or rank_of(parts[0]) is None:
            problems.append("%s: not in a layer folder of core/lib (%s)" %
                            (rel(path), ", ".join("/".join(r) for r in LAYERS)))
            continue
        own = parts[0]
        for number, target in includes(path):
            if target.startswith(GENERATED_PREFIXES):
                continue
            folder = target.split("/")[0] if "/" in target else None
            if folder is None or rank_of(folder) is None:
                problems.append('%s:%d: #include "%s" does not name its layer folder (write "%s/%s" '
                                'or move the header into a layer)' % (rel(path), number, target, own, target))
                continue
            if folder == own:
                continue
            if rank_of(folder) > rank_of(own):
                problems.append('%s:%d: #include "%s": %s/ may not include %s/, a layer above it' %
                                (rel(path), number, target, own, folder))
            elif rank_of(folder) == rank_of(own):
                problems.append('%s:%d: #include "%s": %s/ and %s/ are siblings and may not include '
                                'each other' % (rel(path), number, target, own, folder))

    # Rule 3: clients include no server layer.
    for top, forbidden in ONLY_CLIENT_MAY_NOT.items():
        for path in source_files(os.path.join(root, top)):
            for number, target in includes(path):
                if target.split("/")[0] in forbidden:
                    problems.append('%s:%d: #include "%s": %s may not include %s/' %
                                    (rel(path), number, target, top, target.split("/")[0]))

    # Rule 4: module cycles under core/ (a module is a path without its extension).
    core = os.path.join(root, "core")
    graph = {}
    for path in source_files(core):
        module = os.path.splitext(rel(path))[0]
        edges = graph.setdefault(module, set())
        for _, target in includes(path):
            candidates = [os.path.join(os.path.dirname(path), target), os.path.join(lib, target)]
            for candidate in candidates:
                if os.path.isfile(candidate):
                    other = os.path.splitext(rel(candidate))[0]
                    if other != module:
                        edges.add(other)
                    break
    state = {}
    stack = []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for other in sorted(graph.get(module, ())):
            if state.get(other) == "open":
                cycle = stack[stack.index(other):] + [other]
                problems.append("include cycle: %s" % " -> ".join(cycle))
            elif other not in state:
                visit(other)
        stack.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)

    # Rule 5: one header per basename across sdk/ and core/.
    seen = {}
    for top in ("sdk", "core"):
        for path in source_files(os.path.join(root, top)):
            if path.endswith(".h"):
                seen.setdefault(os.path.basename(path), []).append(rel(path))
    for name, paths in sorted(seen.items()):
        if len(paths) > 1:
            problems.append("header basename %s is used %d times: %s" % (name, len(paths), ", ".join(paths)))
    return problems


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print(__doc__.strip())
        return 0 if len(argv) == 2 else 2
    root = argv[1] if len(argv) == 2 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    problems = check(os.path.abspath(root))
    for problem in problems:
        print("check-layers: " + problem, file=sys.stderr)
    if problems:
        print("check-layers: %d problem(s); the layers are described in README.md, \"Layout\"" % len(problems),
              file=sys.stderr)
        return 1
    print("check-layers: core/lib keeps its layers, no include cycle, no duplicated header name")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
