"""diff_test.py's corpus parser: a request script (corpus/*.xst, the
format of README.md) into a list of Steps, or a ScriptError naming the
file and line.
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

from xsproto import T  # noqa: E402


class ScriptError(Exception):
    def __init__(self, path, lineno, msg):
        Exception.__init__(self, "%s:%d: %s" % (path, lineno, msg))


_ESC = {"0": 0, "n": 10, "t": 9, "r": 13, "\\": 92, '"': 34, "'": 39,
        "a": 7, "b": 8, "f": 12, "v": 11, "e": 27}


def unescape(s, where):
    """C-style escapes: \\0 \\n \\t \\r \\\\ \\" \\xNN \\NNN (octal)."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        i += 1
        if i >= len(s):
            raise ValueError("%s: dangling backslash" % where)
        c = s[i]
        if c == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", s[i + 1:])
            if not m:
                raise ValueError("%s: bad \\x escape" % where)
            out.append(int(m.group(0), 16))
            i += 1 + len(m.group(0))
        elif c in "01234567":
            m = re.match(r"[0-7]{1,3}", s[i:])
            v = int(m.group(0), 8)
            if v > 255:
                raise ValueError("%s: octal escape > 255" % where)
            out.append(v)
            i += len(m.group(0))
        elif c in _ESC:
            out.append(_ESC[c])
            i += 1
        else:
            raise ValueError("%s: unknown escape \\%s" % (where, c))
    return bytes(out)


# one piece of a payload token: b"..." | "..." | $var | bareword, then *N
_PIECE = re.compile(r'''(?P<raw>b)?"(?P<q>(?:[^"\\]|\\.)*)"|(?P<var>\$[A-Za-z_][A-Za-z0-9_]*)|(?P<bare>[^\s"+*]+)''')


def split_tokens(line):
    """Split a line into whitespace-separated tokens; quotes protect spaces;
    '#' at the start of a token begins a comment."""
    toks = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i].isspace():
            i += 1
        if i >= n or line[i] == "#":
            break
        j = i
        while j < n and not line[j].isspace():
            if line[j] == '"':
                j += 1
                while j < n and line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
                if j >= n:
                    raise ValueError("unterminated string")
            j += 1
        toks.append(line[i:j])
        i = j
    return toks


class Token:
    """A payload token: list of pieces, concatenated.  Appends a NUL unless
    the first piece is a b"..." literal (or the line is a 'raw' line)."""

    def __init__(self, text, where):
        self.text = text
        self.pieces = []   # (kind, value, repeat)
        pos = 0
        while True:
            m = _PIECE.match(text, pos)
            if not m:
                raise ValueError("%s: cannot parse token %r at %r" % (where, text, text[pos:]))
            if m.group("var"):
                piece = ("var", m.group("var")[1:])
            elif m.group("bare") is not None:
                piece = ("bytes", m.group("bare").encode())
            else:
                piece = ("bytes", unescape(m.group("q"), where))
            if not self.pieces:
                self.terminated = m.group("raw") is None
            pos = m.end()
            rep = 1
            if pos < len(text) and text[pos] == "*":
                m2 = re.match(r"\*(\d+)", text[pos:])
                if not m2:
                    raise ValueError("%s: bad repeat in %r" % (where, text))
                rep = int(m2.group(1))
                pos += m2.end()
            self.pieces.append((piece[0], piece[1], rep))
            if pos == len(text):
                break
            if text[pos] != "+":
                raise ValueError("%s: junk in token %r at %r" % (where, text, text[pos:]))
            pos += 1

    def value(self, env, raw_line=False):
        out = b""
        for kind, v, rep in self.pieces:
            if kind == "var":
                if v not in env:
                    raise KeyError(v)
                v = str(env[v]).encode()
            out += v * rep
        if self.terminated and not raw_line:
            out += b"\0"
        return out


def parse_type(tok):
    up = tok.upper()
    if up.startswith("XS_"):
        up = up[3:]
    if up in T:
        return T[up]
    if up == "DEBUG":
        return T["CONTROL"]
    try:
        v = int(tok, 0)
    except ValueError:
        return None
    if not 0 <= v <= 0xFFFFFFFF:
        return None
    return v


class Step:
    def __init__(self, lineno, text, op, **kw):
        self.lineno = lineno
        self.text = text
        self.op = op        # open close req raw wait collect quiet settle
        self.__dict__.update(kw)


def parse_file(path):
    steps = []
    conns = set()
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for lineno, line in enumerate(lines, 1):
        text = line.strip()
        try:
            toks = split_tokens(line)
        except ValueError as e:
            raise ScriptError(path, lineno, str(e))
        if not toks:
            continue
        where = "in token"

        def err(msg):
            raise ScriptError(path, lineno, msg)

        def ms_arg(t):
            try:
                v = int(t)
            except ValueError:
                err("expected milliseconds, got %r" % t)
            if not 0 <= v <= 60000:
                err("milliseconds out of range (0..60000)")
            return v

        head = toks[0]
        if head in ("open", "close"):
            if len(toks) != 2:
                err("usage: %s NAME" % head)
            name = toks[1]
            if head == "open":
                if (not re.match(r"^[A-Za-z_][A-Za-z0-9_-]*$", name)
                        or name in ("open", "close", "collect", "quiet", "settle")):
                    err("bad connection name %r" % name)
                conns.add(name)
            elif name not in conns:
                err("unknown connection %r" % name)
            steps.append(Step(lineno, text, head, conn=name))
            continue
        if head in ("collect", "quiet", "settle"):
            if len(toks) != 2:
                err("usage: %s MS" % head)
            steps.append(Step(lineno, text, head, conn=None, ms=ms_arg(toks[1])))
            continue
        if head not in conns:
            err("unknown connection or directive %r (open it first)" % head)
        conn = head
        if len(toks) < 2:
            err("missing request")
        verb = toks[1]
        if verb == "quiet":
            if len(toks) != 3:
                err("usage: NAME quiet MS")
            steps.append(Step(lineno, text, "quiet", conn=conn, ms=ms_arg(toks[2])))
            continue
        if verb == "wait":
            if len(toks) != 2:
                err("usage: NAME wait")
            steps.append(Step(lineno, text, "wait", conn=conn))
            continue
        if verb == "raw":
            rest = toks[2:]
            replies = 0
            if rest and rest[0].startswith("replies="):
                try:
                    replies = int(rest[0].split("=", 1)[1])
                except ValueError:
                    err("bad replies= count")
                rest = rest[1:]
            try:
                parts = [Token(t, where) for t in rest]
            except ValueError as e:
                err(str(e))
            if not parts:
                err("raw needs bytes")
            steps.append(Step(lineno, text, "raw", conn=conn, parts=parts, replies=replies))
            continue
        # request: NAME [opt=val|nowait ...] TYPE [payload tokens] [-> $var]
        opts = {"req": 0, "tx": 0, "len": None, "split": None, "nowait": False}
        i = 1
        while i < len(toks):
            t = toks[i]
            if t == "nowait":
                opts["nowait"] = True
            elif re.match(r"^(req|tx|len|split)=", t):
                k, v = t.split("=", 1)
                if v.startswith("$"):
                    if k != "tx" and k != "req":
                        err("only tx= and req= may use a variable")
                    opts[k] = ("var", v[1:])
                else:
                    try:
                        opts[k] = int(v, 0)
                    except ValueError:
                        err("bad number in %r" % t)
                    if not 0 <= opts[k] <= 0xFFFFFFFF:
                        err("%s out of u32 range" % k)
            else:
                break
            i += 1
        if i >= len(toks):
            err("missing message type")
        mtype = parse_type(toks[i])
        if mtype is None:
            err("unknown message type %r" % toks[i])
        rest = toks[i + 1:]
        capture = None
        if len(rest) >= 2 and rest[-2] == "->":
            if not re.match(r"^\$[A-Za-z_][A-Za-z0-9_]*$", rest[-1]):
                err("capture target must be $name")
            capture = rest[-1][1:]
            rest = rest[:-2]
        try:
            payload = [Token(t, where) for t in rest]
        except ValueError as e:
            err(str(e))
        if capture and opts["nowait"]:
            err("cannot capture from a nowait request")
        steps.append(Step(lineno, text, "req", conn=conn, type=mtype,
                          payload=payload, capture=capture, **opts))
    return steps
