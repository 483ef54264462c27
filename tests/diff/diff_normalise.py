"""diff_test.py's normalisation of deliberate differences between the
daemons: ALL of them live here, in NORMALISERS, applied to every message
a run records.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from xsproto import Msg, T  # noqa: E402


class Normaliser:
    """Per-run state for normalisers.  Each normaliser takes (run state,
    the request this message answers or None, the Msg) and returns a Msg."""

    def __init__(self):
        self.gen_labels = {}    # request path -> {generation bytes: label}


def norm_directory_part_generation(state, request, m):
    # (a) DIRECTORY_PART replies start with the node's generation count as a
    # decimal NUL-terminated string.  Its value is an implementation detail
    # (cxenstored uses a global modification counter); clients only compare
    # it between chunks.  Replace it by a label that is stable per node path
    # within one run: "changed vs unchanged" (and "same as an earlier value")
    # is still compared, the number itself is not.
    if m.type != T["DIRECTORY_PART"]:
        return m
    nul = m.payload.find(b"\0")
    if nul < 0:
        return m
    gen = m.payload[:nul]
    key = None
    if request is not None:
        key = request[1].split(b"\0", 1)[0]
    labels = state.gen_labels.setdefault(key, {})
    if gen not in labels:
        labels[gen] = len(labels)
    label = b"<gen#%d>" % labels[gen]
    return Msg(m.type, m.req_id, m.tx_id, label + m.payload[nul:])


NORMALISERS = [
    norm_directory_part_generation,
]


def normalise(state, request, m):
    for f in NORMALISERS:
        m = f(state, request, m)
    return m
