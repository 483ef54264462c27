#!/usr/bin/python3
"""e2e_badinput: malformed arguments and invalid paths.

TestMalformedArgs (missing NUL, extra NULs, too few or too many arguments),
TestPaths (characters, '//', trailing '/', XSA-481, length). test_badinput.py
runs this file with the others; alone:

    XSR_DAEMON=c /usr/bin/python3 tests/e2e/test_badinput_args.py [-v]
"""
import unittest

from badinputlib import (BASE, CANARY, EINVAL, BadInputBase, MsgCase, Ok, Reply,
                         _B, _node_absent, add_cases, connect, expect_ok,
                         no_events)


# ==================================================== malformed arguments
def _value_is(path, value):
    def after(tc, victim, tx, msg):
        with connect(tc.d.socket) as c:
            tc.assertEqual(c.read(path), value)
    return after


def _reset_perms_node(tc, victim):
    victim.write(BASE + "/p", "")
    victim.set_perms(BASE + "/p", ["n0"])


def _perms_unchanged(tc, victim, tx, msg):
    tc.assertEqual(victim.get_perms(BASE + "/p"), ["n0"])


def _no_watch_registered(tc, victim, tx, msg):
    tc.assertEqual(no_events(victim), [], "malformed WATCH fired an event")
    victim.write(BASE + "/watched", "x")
    tc.assertEqual(no_events(victim), [], "malformed WATCH was registered")


def _register_watch(tc, victim):
    victim.watch(BASE, "tok")
    victim.pending(0.2)


def _watch_still_there(tc, victim, tx, msg):
    tc.assertEqual(victim.unwatch(BASE, "tok"), b"OK\0")


def _tx_still_alive(tc, victim, tx, msg):
    tc.assertEqual(expect_ok(victim, "TRANSACTION_END", b"F\0", tx), b"OK\0")


_MK = BASE + "/mk"

_ARG_CASES = []


def _onearg(type_, path, after=None):
    p = path.encode()
    for v, payload in (("missing_nul", p), ("extra_nul", p + b"\0\0"),
                       ("two_args", p + b"\0x\0"), ("empty_path", b"\0"),
                       ("nul_first", b"\0" + p + b"\0")):
        _ARG_CASES.append(MsgCase("args.%s.%s" % (type_, v), type_, payload,
                                  EINVAL, after=after))


_onearg("READ", CANARY)
_onearg("DIRECTORY", BASE)
_onearg("GET_PERMS", BASE)
_onearg("MKDIR", _MK, after=_node_absent(_MK))
_onearg("RM", CANARY)     # the survivor check proves the canary is still there

_ARG_CASES += [
    # WRITE: path, NUL, then the value = every remaining byte (may hold NULs)
    MsgCase("args.WRITE.missing_nul", "WRITE", _B + b"/w1", EINVAL,
            after=_node_absent(BASE + "/w1")),
    MsgCase("args.WRITE.empty_path", "WRITE", b"\0value", EINVAL),
    MsgCase("args.WRITE.extra_nul", "WRITE", _B + b"/w2\0\0", Ok(),
            after=_value_is(BASE + "/w2", b"\0"),
            note="valid: value is one NUL byte"),
    MsgCase("args.WRITE.many_args", "WRITE", _B + b"/w3\0a\0b\0", Ok(),
            after=_value_is(BASE + "/w3", b"a\0b\0"),
            note="valid: value is 'a\\0b\\0'"),
    # SET_PERMS: path NUL perm NUL [perm NUL ...]
    MsgCase("args.SET_PERMS.missing_nul", "SET_PERMS", _B + b"/p\0n0",
            EINVAL, setup=_reset_perms_node, after=_perms_unchanged),
    MsgCase("args.SET_PERMS.no_nul_at_all", "SET_PERMS", _B + b"/p",
            EINVAL, setup=_reset_perms_node, after=_perms_unchanged),
    MsgCase("args.SET_PERMS.no_perms", "SET_PERMS", _B + b"/p\0",
            EINVAL, setup=_reset_perms_node, after=_perms_unchanged),
    MsgCase("args.SET_PERMS.extra_nul", "SET_PERMS", _B + b"/p\0r0\0\0",
            EINVAL, setup=_reset_perms_node, after=_perms_unchanged,
            note="empty perm string"),
    MsgCase("args.SET_PERMS.bad_letter", "SET_PERMS", _B + b"/p\0x0\0",
            EINVAL, setup=_reset_perms_node, after=_perms_unchanged),
    MsgCase("args.SET_PERMS.no_domid", "SET_PERMS", _B + b"/p\0r\0",
            EINVAL, setup=_reset_perms_node, after=_perms_unchanged),
    MsgCase("args.SET_PERMS.bad_domid", "SET_PERMS", _B + b"/p\0rabc\0",
            EINVAL, setup=_reset_perms_node, after=_perms_unchanged),
    MsgCase("args.SET_PERMS.trailing_junk", "SET_PERMS", _B + b"/p\0r0x\0",
            EINVAL, setup=_reset_perms_node, after=_perms_unchanged),
    MsgCase("args.SET_PERMS.many_perms", "SET_PERMS",
            _B + b"/p\0n0\0" + b"r0\0" * 100, Ok(), setup=_reset_perms_node,
            note="valid: privileged socket, no permissions quota"),
    MsgCase("args.SET_PERMS.special_unknown", "SET_PERMS", b"@foo\0n0\0",
            EINVAL, note="@name other than @introduceDomain/@releaseDomain"),
    # WATCH: exactly path NUL token NUL
    MsgCase("args.WATCH.missing_nul", "WATCH", _B + b"\0tok", EINVAL,
            after=_no_watch_registered),
    MsgCase("args.WATCH.no_nul_at_all", "WATCH", _B, EINVAL,
            after=_no_watch_registered),
    MsgCase("args.WATCH.one_arg", "WATCH", _B + b"\0", EINVAL,
            after=_no_watch_registered),
    MsgCase("args.WATCH.extra_nul", "WATCH", _B + b"\0tok\0\0", EINVAL,
            after=_no_watch_registered, note="3rd string empty"),
    MsgCase("args.WATCH.three_args", "WATCH", _B + b"\0tok\0x\0", EINVAL,
            after=_no_watch_registered, note="3rd string not a number"),
    MsgCase("args.WATCH.four_args", "WATCH", _B + b"\0tok\0" b"1\0x\0",
            EINVAL, after=_no_watch_registered),
    MsgCase("args.WATCH.empty_path", "WATCH", b"\0tok\0", EINVAL,
            after=_no_watch_registered),
    # UNWATCH: exactly path NUL token NUL; the real watch must survive
    MsgCase("args.UNWATCH.missing_nul", "UNWATCH", _B + b"\0tok", EINVAL,
            setup=_register_watch, after=_watch_still_there),
    MsgCase("args.UNWATCH.one_arg", "UNWATCH", _B + b"\0", EINVAL,
            setup=_register_watch, after=_watch_still_there),
    MsgCase("args.UNWATCH.extra_nul", "UNWATCH", _B + b"\0tok\0\0", EINVAL,
            setup=_register_watch, after=_watch_still_there),
    MsgCase("args.UNWATCH.three_args", "UNWATCH", _B + b"\0tok\0x\0",
            EINVAL, setup=_register_watch, after=_watch_still_there),
    # DIRECTORY_PART: exactly path NUL offset NUL
    MsgCase("args.DIRECTORY_PART.missing_nul", "DIRECTORY_PART",
            _B + b"\0" b"0", EINVAL),
    MsgCase("args.DIRECTORY_PART.no_nul_at_all", "DIRECTORY_PART", _B,
            EINVAL),
    MsgCase("args.DIRECTORY_PART.one_arg", "DIRECTORY_PART", _B + b"\0",
            EINVAL),
    MsgCase("args.DIRECTORY_PART.extra_nul", "DIRECTORY_PART",
            _B + b"\0" b"0\0\0", EINVAL),
    MsgCase("args.DIRECTORY_PART.three_args", "DIRECTORY_PART",
            _B + b"\0" b"0\0x\0", EINVAL),
    # INTRODUCE: domid NUL gfn NUL port NUL (never a valid one here)
    MsgCase("args.INTRODUCE.missing_nul", "INTRODUCE", b"5\0" b"0\0" b"1",
            EINVAL),
    MsgCase("args.INTRODUCE.two_args", "INTRODUCE", b"5\0" b"0\0", EINVAL),
    MsgCase("args.INTRODUCE.empty_args", "INTRODUCE", b"5\0\0\0", EINVAL,
            note="empty port"),
    MsgCase("args.INTRODUCE.four_args_port0", "INTRODUCE",
            b"5\0" b"0\0" b"0\0" b"x\0", EINVAL),
    # CONTROL: cmd NUL args...; every one below is invalid
    MsgCase("args.CONTROL.missing_nul", "CONTROL", b"check", EINVAL),
    MsgCase("args.CONTROL.empty_cmd", "CONTROL", b"\0", EINVAL),
    MsgCase("args.CONTROL.nul_first", "CONTROL", b"\0check\0", EINVAL),
    MsgCase("args.CONTROL.extra_nul", "CONTROL", b"check\0\0", EINVAL),
    MsgCase("args.CONTROL.too_many", "CONTROL", b"check\0extra\0", EINVAL),
    MsgCase("args.CONTROL.too_few", "CONTROL", b"quota\0set\0", EINVAL),
    MsgCase("args.CONTROL.print_no_arg", "CONTROL", b"print\0", EINVAL),
    MsgCase("args.CONTROL.unknown", "CONTROL", b"no-such-command\0", EINVAL),
    # single-domid requests without their NUL
    MsgCase("args.RELEASE.missing_nul", "RELEASE", b"5", EINVAL),
    MsgCase("args.RESUME.missing_nul", "RESUME", b"5", EINVAL),
    MsgCase("args.IS_DOMAIN_INTRODUCED.missing_nul", "IS_DOMAIN_INTRODUCED",
            b"5", EINVAL),
    MsgCase("args.GET_DOMAIN_PATH.missing_nul", "GET_DOMAIN_PATH", b"5",
            EINVAL),
    MsgCase("args.GET_DOMAIN_PATH.non_numeric", "GET_DOMAIN_PATH", b"abc\0",
            Reply(b"/local/domain/0\0"),
            note="4.17 atoi(): junk is domain 0; Xen 4.22 answers EINVAL"),
    MsgCase("args.SET_TARGET.one_arg", "SET_TARGET", b"5\0", EINVAL),
    MsgCase("args.SET_TARGET.missing_nul", "SET_TARGET", b"5\0" b"6",
            EINVAL),
]
# TRANSACTION_END inside a live transaction: EINVAL, and the transaction
# is still alive afterwards (abort answers OK).
for _v, _p in (("missing_nul", b"T"), ("extra_nul", b"T\0\0"),
               ("two_args", b"T\0x\0"), ("bad_arg", b"X\0"),
               ("lowercase", b"t\0"), ("double", b"TT\0"),
               ("empty_arg", b"\0"), ("zero_len", b"")):
    _ARG_CASES.append(MsgCase("args.TRANSACTION_END.%s" % _v,
                              "TRANSACTION_END", _p, EINVAL, in_tx=True,
                              after=_tx_still_alive))


class TestMalformedArgs(BadInputBase):
    """Missing NUL, extra NULs, too few / too many arguments."""

    @classmethod
    def class_setup(cls, conn):
        conn.write(BASE + "/p", "")


add_cases(TestMalformedArgs, _ARG_CASES)


# ================================================================= paths
_BAD_PATHS = [
    ("space", b"/badinput/a b"),
    ("control_char", b"/badinput/a\x01b"),
    ("high_byte", b"/badinput/a\xffb"),
    ("dot", b"/badinput/a.b"),
    ("star", b"/badinput/a*"),
    ("double_slash", b"/badinput//a"),
    ("only_double_slash", b"//"),
    ("trailing_slash", b"/badinput/"),
    ("relative_trailing_slash", b"badinput/"),
    ("xsa481_local_domain", b"/local/domain/"),
    ("xsa481_local_domain_5", b"/local/domain/5/"),
    ("empty", b""),
    ("overlong_abs_3510", b"/badinput/" + b"a" * 3500),
    ("overlong_after_domain_prefix_2049", b"/local/domain/0/" + b"a" * 2049),
    ("overlong_relative_2049", b"a" * 2049),
    ("special_at", b"@foo"),
]
_PATH_OPS = [
    ("READ", lambda p: p + b"\0"),
    ("WRITE", lambda p: p + b"\0value"),
    ("MKDIR", lambda p: p + b"\0"),
    ("RM", lambda p: p + b"\0"),
    ("DIRECTORY", lambda p: p + b"\0"),
    ("GET_PERMS", lambda p: p + b"\0"),
    ("SET_PERMS", lambda p: p + b"\0n0\0"),
    ("WATCH", lambda p: p + b"\0tok\0"),
    ("DIRECTORY_PART", lambda p: p + b"\0" b"0\0"),
]
# @foo is a valid watch path; SET_PERMS @foo is args.SET_PERMS.special_unknown;
# GET_PERMS of @names changed in 4.22.
_PATH_SKIP = {("special_at", "WATCH"), ("special_at", "SET_PERMS"),
              ("special_at", "GET_PERMS")}


def _path_cases():
    out = []
    for pname, path in _BAD_PATHS:
        for op, mk in _PATH_OPS:
            if (pname, op) in _PATH_SKIP:
                continue
            after = _no_watch_registered if op == "WATCH" else None
            out.append(MsgCase("path.%s.%s" % (op, pname), op, mk(path),
                               EINVAL, after=after))
    return out


class TestPaths(BadInputBase):
    """Invalid paths: characters, '//', trailing '/', XSA-481, length."""


add_cases(TestPaths, _path_cases())



if __name__ == "__main__":
    unittest.main()
