"""diff_test.py's comparison: two transcripts step by step, and how a
transcript, a message and a difference are printed.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from xsproto import TYPES  # noqa: E402


def esc(b, limit=240):
    out = []
    for ch in b[:limit]:
        if ch == 0:
            out.append("\\0")
        elif ch == 0x5c:
            out.append("\\\\")
        elif ch == 0x22:
            out.append('\\"')
        elif ch == 10:
            out.append("\\n")
        elif 0x20 <= ch < 0x7f:
            out.append(chr(ch))
        else:
            out.append("\\x%02x" % ch)
    s = '"' + "".join(out) + '"'
    if len(b) > limit:
        s += "...(+%d bytes)" % (len(b) - limit)
    return s


def type_name(t):
    return TYPES[t] if t < len(TYPES) else str(t)


def describe(e):
    if e.kind == "msg":
        m = e.data
        return "%-17s req=%d tx=%d len=%d %s" % (type_name(m.type), m.req_id, m.tx_id,
                                                  len(m.payload), esc(m.payload))
    if e.kind == "closed":
        return "<connection closed by daemon>"
    if e.kind == "timeout":
        return "<timeout: no reply>"
    if e.kind == "partial":
        return "<incomplete frame: %s>" % esc(e.data)
    return "<%s: %s>" % (e.kind, e.data)


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def step_label(steps, i):
    if i < len(steps):
        return "line %d: %s" % (steps[i].lineno, steps[i].text)
    return "(end of script: late messages)"


def print_transcript(steps, tr, out, label):
    out.write("  transcript of %s:\n" % label)
    for i, rec in enumerate(tr):
        if i < len(steps) or rec:
            out.write("    %s\n" % step_label(steps, i))
        for name in sorted(rec):
            for e in rec[name]:
                out.write("      %-4s <- %s\n" % (name, describe(e)))


def compare(steps, ta, tb, la, lb, out, max_report=5):
    """Returns number of differing steps; prints up to max_report."""
    bad = 0
    for i in range(max(len(ta), len(tb))):
        ra = ta[i] if i < len(ta) else {}
        rb = tb[i] if i < len(tb) else {}
        if ra == rb:
            continue
        bad += 1
        if bad > max_report:
            continue
        out.write("  MISMATCH at %s\n" % step_label(steps, i))
        for name in sorted(set(ra) | set(rb)):
            ea, eb = ra.get(name, []), rb.get(name, [])
            if ea == eb:
                continue
            k = first_diff(ea, eb)
            out.write("    connection %s (first difference at message #%d of this step):\n" % (name, k + 1))
            for j in range(max(len(ea), len(eb))):
                x = ea[j] if j < len(ea) else None
                y = eb[j] if j < len(eb) else None
                mark = "  " if x == y else "!!"
                out.write("     %s %-5s %s\n" % (mark, la, describe(x) if x else "<nothing>"))
                if x != y:
                    out.write("     %s %-5s %s\n" % (mark, lb, describe(y) if y else "<nothing>"))
                    if (x and y and x.kind == y.kind == "msg" and x.data.type == y.data.type
                            and x.data.payload != y.data.payload):
                        p = first_diff(x.data.payload, y.data.payload)
                        out.write("              payloads differ from byte %d\n" % p)
    if bad > max_report:
        out.write("  ... and %d more differing steps\n" % (bad - max_report))
    return bad
