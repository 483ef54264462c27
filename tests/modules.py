#!/usr/bin/env python3
"""tests/modules.py: the modules of the server (node/) call each other
without circles, and every exported function's name says its module.

The CMake layer check (xsr_layer_check) makes a call from a lower
library into a higher one fail to link; inside the server's one library
(libxsr_node.a) this test does the same for its modules. A module is a
file, or the files that share its name before the first '_' (cluster.c,
cluster_member.c, ... are the cluster module; dispatch*.c, domain*.c and
conn*.c likewise). There is an arrow from module A to module B when an
object of A uses a symbol that only an object of B defines (nm).

Checks:
  - no circle between modules (a strongly connected component of more
    than one module fails, naming the arrows of the circle);
  - every global function a file defines starts with its module's name
    (or the plural, as domains_ for domain.c; watches_ for watch.c),
    followed by '_', apart from main().

With --floors it prints the modules floor by floor (floor 0 uses no
other module), the "house" docs/ARCHITECTURE.md draws.

    python3 tests/modules.py build/node/libxsr_node.a [--floors]
"""
import collections
import os
import re
import subprocess
import sys


def module_of(obj):
    base = os.path.basename(obj)
    base = re.sub(r"\.c\.o$|\.o$", "", base)
    return base.split("_")[0]


def read_archive(path):
    out = subprocess.run(["nm", "-A", path], capture_output=True,
                         text=True, check=True).stdout
    defs, funcs = {}, collections.defaultdict(set)
    undef = collections.defaultdict(set)
    for line in out.splitlines():
        m = re.match(r"[^:]*:([^:]+):\s*[0-9a-f]*\s+(\w)\s+(\S+)$", line)
        if not m:
            continue
        obj, kind, sym = m.groups()
        if kind == "U":
            undef[obj].add(sym)
        elif kind.isupper():
            defs[sym] = obj
            if kind == "T":
                funcs[obj].add(sym)
    return defs, undef, funcs


def graph(defs, undef):
    g = collections.defaultdict(set)
    why = {}
    for obj, syms in undef.items():
        a = module_of(obj)
        g[a]
        for s in syms:
            if s in defs:
                b = module_of(defs[s])
                if b != a:
                    g[a].add(b)
                    why.setdefault((a, b), "%s uses %s (%s)" % (
                        os.path.basename(obj), s,
                        os.path.basename(defs[s])))
    for obj in defs.values():
        g[module_of(obj)]
    return g, why


def sccs(g):
    """Tarjan's algorithm, iterative enough for a few dozen modules."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
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
            out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def floors(g):
    level = {}

    def lv(v):
        if v not in level:
            level[v] = 0
            level[v] = 1 + max((lv(w) for w in g[v]), default=-1)
        return level[v]

    for v in g:
        lv(v)
    by = collections.defaultdict(list)
    for v, n in level.items():
        by[n].append(v)
    return by


def bad_names(funcs):
    bad = []
    for obj, names in funcs.items():
        mod = module_of(obj)
        for f in names:
            if f == "main" or f.startswith(mod + "_") or \
                    f.startswith(mod + "s_") or f.startswith(mod + "es_"):
                continue
            bad.append("%s defines %s: not %s_*" % (
                os.path.basename(obj), f, mod))
    return sorted(bad)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    defs, undef, funcs = read_archive(sys.argv[1])
    g, why = graph(defs, undef)
    failed = False
    for comp in sccs(g):
        if len(comp) > 1:
            failed = True
            print("circle between modules: " + ", ".join(comp))
            for a in comp:
                for b in sorted(g[a]):
                    if b in comp:
                        print("  %s -> %s: %s" % (a, b, why[(a, b)]))
    for line in bad_names(funcs):
        failed = True
        print(line)
    if "--floors" in sys.argv and not failed:
        by = floors(g)
        for n in sorted(by, reverse=True):
            print("floor %2d: %s" % (n, " ".join(sorted(by[n]))))
    if failed:
        sys.exit(1)
    print("%d modules, %d arrows, no circle; every function named by its "
          "module" % (len(g), sum(len(v) for v in g.values())))


if __name__ == "__main__":
    main()
