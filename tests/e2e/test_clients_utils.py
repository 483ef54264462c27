#!/usr/bin/python3
"""e2e_clients: the xenstore-* commands (xenstore-utils) against the daemon.

TestReadWrite (xenstore-write, xenstore-read), TestLsList (xenstore-ls,
xenstore-list), TestRmExists (xenstore-rm, xenstore-exists), TestChmod
(xenstore-chmod), TestWatch (xenstore-watch while other commands write).
test_clients.py runs this file with the others; alone:

    /usr/bin/python3 tests/e2e/test_clients_utils.py -v TestWatch
"""
import errno
import unittest

from clientlib import BIG_NAMES, DaemonCase, run_tool, stop_daemon, xs_escape


# ---------------------------------------------------------------------------
# xenstore-write / xenstore-read


class TestReadWrite(DaemonCase):
    needs = ("xenstore-read", "xenstore-write", "xenstore-exists")

    def test_write_then_read(self):
        self.xs("xenstore-write", "/rw/a", "hello", out="")
        self.xs("xenstore-read", "/rw/a", out="hello\n")
        # on the wire: READ returns the bytes without a terminating NUL
        self.assertEqual(self.conn().read("/rw/a"), b"hello")

    def test_overwrite(self):
        self.xs("xenstore-write", "/rw/o", "first")
        self.xs("xenstore-write", "/rw/o", "2nd")
        self.xs("xenstore-read", "/rw/o", out="2nd\n")

    def test_empty_value(self):
        self.xs("xenstore-write", "/rw/empty", "")
        self.xs("xenstore-read", "/rw/empty", out="\n")
        self.assertEqual(self.conn().read("/rw/empty"), b"")

    def test_multiple_keys(self):
        # more than one pair: the tool runs all writes in one transaction
        self.xs("xenstore-write", "/rw/m1", "one", "/rw/m2", "two",
                "/rw/m3/deep", "three", out="")
        self.xs("xenstore-read", "/rw/m1", "/rw/m2", "/rw/m3/deep",
                out="one\ntwo\nthree\n")
        self.xs("xenstore-read", "-p", "/rw/m1", "/rw/m3/deep",
                out="/rw/m1: one\n/rw/m3/deep: three\n")

    def test_implicit_parents(self):
        self.xs("xenstore-write", "/rw/p/q/r", "leaf")
        c = self.conn()
        self.assertEqual(c.read("/rw/p"), b"")
        self.assertEqual(c.read("/rw/p/q"), b"")
        self.assertEqual(c.directory("/rw/p"), ["q"])
        self.assertEqual(c.get_perms("/rw/p/q"), ["n0"])

    def test_read_missing(self):
        self.xs("xenstore-read", "/rw/nope", rc=1, out="",
                err="xenstore-read: couldn't read path /rw/nope\n")

    def test_read_several_one_missing(self):
        # values read before the failure are still printed
        self.xs("xenstore-write", "/rw/s1", "v1", "/rw/s2", "v2")
        self.xs("xenstore-read", "/rw/s1", "/rw/nope", "/rw/s2", rc=1,
                out="v1\n", err="xenstore-read: couldn't read path /rw/nope\n")

    def test_escapes(self):
        spec = r"a\tb\nc\rd\\e\x41\001\x7f\x80\xff\x1bz"
        raw = b"a\tb\nc\rd\\eA\x01\x7f\x80\xff\x1bz"
        self.xs("xenstore-write", "/rw/esc", spec)
        self.assertEqual(self.conn().read("/rw/esc"), raw)
        self.xs("xenstore-read", "-R", "/rw/esc", out=raw)
        self.xs("xenstore-read", "/rw/esc", out=xs_escape(raw) + "\n")
        self.assertEqual(xs_escape(raw), r"a\tb\nc\rd\\eA\001\x7f\x80\xff\x1bz")

    def test_embedded_nul(self):
        self.xs("xenstore-write", "/rw/nul", r"x\000y\0")
        self.assertEqual(self.conn().read("/rw/nul"), b"x\x00y\x00")
        self.xs("xenstore-read", "/rw/nul", out="x\\000y\\000\n")
        self.xs("xenstore-read", "-R", "/rw/nul", out=b"x\x00y\x00")
        # value with NULs written on the wire, read back by the tool
        self.conn().write("/rw/nul2", b"\x00\x00a")
        self.xs("xenstore-read", "/rw/nul2", out="\\000\\000a\n")

    def test_raw_write_and_read(self):
        # -R: no unescaping on write, no escaping on read, no newline
        self.xs("xenstore-write", "-R", "/rw/raw", r"a\tb\x41")
        self.assertEqual(self.conn().read("/rw/raw"), b"a\\tb\\x41")
        self.xs("xenstore-read", "-R", "/rw/raw", out=b"a\\tb\\x41")
        self.xs("xenstore-read", "/rw/raw", out="a\\\\tb\\\\x41\n")

    def test_raw_all_bytes(self):
        allbytes = bytes(range(1, 256))
        self.xs("xenstore-write", "-R", "/rw/bytes", allbytes)
        self.assertEqual(self.conn().read("/rw/bytes"), allbytes)
        self.xs("xenstore-read", "-R", "/rw/bytes", out=allbytes)
        self.xs("xenstore-read", "/rw/bytes", out=xs_escape(allbytes) + "\n")
        self.xs("xenstore-read", "-R", "-p", "/rw/bytes",
                out=b"/rw/bytes: " + allbytes)

    def test_large_values(self):
        big = "".join(chr(0x41 + i % 26) for i in range(3000))
        self.xs("xenstore-write", "/rw/big", big)
        self.xs("xenstore-read", "/rw/big", out=big + "\n")
        # larger than one message: libxenstore refuses it (E2BIG) itself;
        # the daemon must be unaffected
        self.xs("xenstore-write", "/rw/toobig", "x" * 5000, rc=1,
                err="xenstore-write: could not write path /rw/toobig\n")
        self.assert_missing("/rw/toobig")

    def test_relative_paths(self):
        # socket clients' relative paths live under /local/domain/0
        self.xs("xenstore-write", "rwrel/x", "rel")
        self.xs("xenstore-read", "/local/domain/0/rwrel/x", out="rel\n")
        self.xs("xenstore-write", "/local/domain/0/rwrel/y", "abs")
        self.xs("xenstore-read", "-p", "rwrel/y", out="rwrel/y: abs\n")

    def test_invalid_path(self):
        self.xs("xenstore-write", "/rw/bad path", "v", rc=1,
                err="xenstore-write: could not write path /rw/bad path\n")
        self.xs("xenstore-write", "/rw/trailing/", "v", rc=1,
                err="xenstore-write: could not write path /rw/trailing/\n")
        self.xs("xenstore-read", "/rw//x", rc=1,
                err="xenstore-read: couldn't read path /rw//x\n")
        self.assert_missing("/rw/trailing")

    def test_usage_errors(self):
        # client-side argument checks: exit 1, nothing written
        self.xs("xenstore-write", "/rw/odd", rc=1, err=None)
        self.xs("xenstore-read", rc=1, err=None)
        self.assert_missing("/rw/odd")


# ---------------------------------------------------------------------------
# xenstore-ls / xenstore-list  (read-only tests over a tree built once)

G = "g" * 100
N = "n" * 80

LS_DEFAULT = (
    'tool = ""\n'
    ' xenstored = ""\n'
    'ls = ""\n'
    ' alpha = "1"\n'
    '  x = "tab\\there"\n'
    ' beta = ""\n'
    '  deep = ""\n'
    '   er = "v"\n'
    ' gamma = "' + "g" * 66 + '\\..."\n'
    ' zeta = "z"\n'
    ' delta = ""\n'
    ' ' + "n" * 71 + ' = "\\..."\n')

LS_FULL = (
    '/tool = ""\n'
    '/tool/xenstored = ""\n'
    '/ls = ""\n'
    '/ls/alpha = "1"\n'
    '/ls/alpha/x = "tab\\there"\n'
    '/ls/beta = ""\n'
    '/ls/beta/deep = ""\n'
    '/ls/beta/deep/er = "v"\n'
    '/ls/gamma = "' + G + '"\n'
    '/ls/zeta = "z"\n'
    '/ls/delta = ""\n'
    '/ls/' + N + ' = "v"\n')

LS_PERMS = (
    'tool = ""  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    ' xenstored = ""  . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    'ls = ""  . . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    ' alpha = "1" . . . . . . . . . . . . . . . . . . . . . . . .  (n0,r5,b7)\n'
    '  x = "tab\\there"  . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    ' beta = "" . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    '  deep = ""  . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    '   er = "v"  . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    ' gamma = "' + "g" * 66 + '\\..."  (b0)\n'
    ' zeta = "z"  . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    ' delta = ""  . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
    ' ' + "n" * 71 + ' = "\\..."  (n0)\n')

LS_FULL_PERMS = (
    '/tool = ""   (n0)\n'
    '/tool/xenstored = ""   (n0)\n'
    '/ls = ""   (n0)\n'
    '/ls/alpha = "1"   (n0,r5,b7)\n'
    '/ls/alpha/x = "tab\\there"   (n0)\n'
    '/ls/beta = ""   (n0)\n'
    '/ls/beta/deep = ""   (n0)\n'
    '/ls/beta/deep/er = "v"   (n0)\n'
    '/ls/gamma = "' + G + '"   (b0)\n'
    '/ls/zeta = "z"   (n0)\n'
    '/ls/delta = ""   (n0)\n'
    '/ls/' + N + ' = "v"   (n0)\n')



class TestLsList(DaemonCase):
    """Output of xenstore-ls / xenstore-list over a fixed tree.  The tree is
    built once; the tests only read.  The daemon is fresh, so '/' holds only
    what the daemon creates at start-up (/tool/xenstored) plus this tree."""
    needs = ("xenstore-ls", "xenstore-list", "xenstore-write", "xenstore-chmod")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.build()
        except BaseException:
            stop_daemon(cls.daemon)
            raise

    @classmethod
    def build(cls):
        def sh(*argv):
            p = run_tool(list(argv), cls.env)
            assert p.returncode == 0, (argv, p)
        # one transaction: children are created in this order
        sh("xenstore-write", "/ls/alpha", "1", "/ls/alpha/x", r"tab\there",
           "/ls/beta/deep/er", "v", "/ls/gamma", G, "/ls/zeta", "z",
           "/ls/delta", "", "/ls/" + N, "v")
        sh("xenstore-chmod", "/ls/alpha", "n0", "r5", "b7")
        sh("xenstore-chmod", "/ls/gamma", "b0")
        # more than 4096 bytes of child names: DIRECTORY fails with E2BIG and
        # libxenstore falls back to DIRECTORY_PART
        args = []
        for i, name in enumerate(BIG_NAMES):
            args += ["/big/" + name, str(i + 1)]
        sh("xenstore-write", *args)
        sh("xenstore-write", "lsrel/k", "v")        # /local/domain/0/lsrel/k

    def test_ls_default_root(self):
        # non-tty stdout: width 80, long values/names truncated as "\..."
        tail = ('local = ""\n domain = ""\n  0 = ""\n   lsrel = ""\n'
                '    k = "v"\n')
        self.xs("xenstore-ls", out=LS_DEFAULT + self.big_ls() + tail)
        self.xs("xenstore-ls", "/", out=LS_DEFAULT + self.big_ls() + tail)

    def big_ls(self):
        return 'big = ""\n' + "".join(' %s = "%d"\n' % (n, i + 1)
                                      for i, n in enumerate(BIG_NAMES))

    def test_ls_subtree(self):
        self.xs("xenstore-ls", "/ls/beta", out='deep = ""\n er = "v"\n')
        self.xs("xenstore-ls", "-p", "/ls/beta", out=(
            'deep = ""  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'
            ' er = "v"  . . . . . . . . . . . . . . . . . . . . . . . . .  (n0)\n'))

    def test_ls_full_paths(self):
        self.xs("xenstore-ls", "-f", "/ls", out=LS_FULL.split("/ls = \"\"\n")[1])
        out = self.xs("xenstore-ls", "-f").decode()
        self.assertEqual(out.split('/big = ""\n')[0], LS_FULL)

    def test_ls_perms(self):
        out = self.xs("xenstore-ls", "-p").decode()
        self.assertEqual(out.split('big = ""')[0], LS_PERMS)
        out = self.xs("xenstore-ls", "-f", "-p").decode()
        self.assertEqual(out.split('/big = ""')[0], LS_FULL_PERMS)

    def test_ls_leaf_and_missing(self):
        self.xs("xenstore-ls", "/ls/zeta", out="")
        self.xs("xenstore-ls", "/ls/nope", rc=1, out="",
                err="xenstore-ls: xs_directory (/ls/nope): No such file or directory\n")

    def test_ls_relative(self):
        self.xs("xenstore-ls", "lsrel", out='k = "v"\n')
        self.xs("xenstore-ls", "-f", "lsrel", out='lsrel/k = "v"\n')

    def test_list(self):
        names = ["alpha", "beta", "gamma", "zeta", "delta", N]
        self.xs("xenstore-list", "/ls", out="".join(n + "\n" for n in names))
        self.xs("xenstore-list", "-p", "/ls", "/ls/beta",
                out="".join("/ls/%s\n" % n for n in names) + "/ls/beta/deep\n")
        self.xs("xenstore-list", "/ls/zeta", out="")
        self.xs("xenstore-list", "/ls/nope", rc=1, out="",
                err="xenstore-list: could not list path /ls/nope\n")

    def test_list_big_directory(self):
        c = self.conn()
        with self.assertRaises(OSError) as cm:
            c.directory("/big")
        self.assertEqual(cm.exception.errno, errno.E2BIG)
        self.xs("xenstore-list", "/big", out="".join(n + "\n" for n in BIG_NAMES))
        out = self.xs("xenstore-ls", "-f", "/big").decode()
        self.assertEqual(out, "".join('/big/%s = "%d"\n' % (n, i + 1)
                                      for i, n in enumerate(BIG_NAMES)))


# ---------------------------------------------------------------------------
# xenstore-rm / xenstore-exists


class TestRmExists(DaemonCase):
    needs = ("xenstore-rm", "xenstore-exists", "xenstore-write", "xenstore-list")

    def test_exists(self):
        self.xs("xenstore-write", "/ex/a", "1", "/ex/empty", "")
        self.xs("xenstore-exists", "/ex/a", out="", err="")
        self.xs("xenstore-exists", "/ex/empty", out="", err="")
        self.xs("xenstore-exists", "/ex", out="", err="")
        self.xs("xenstore-exists", "/", out="", err="")
        self.xs("xenstore-exists", "/ex/nope", rc=1, out="", err="")
        self.xs("xenstore-exists", "/ex/nope/deeper", rc=1, out="", err="")
        self.xs("xenstore-exists", "/ex/a", "/ex/empty")
        self.xs("xenstore-exists", "/ex/a", "/ex/nope", rc=1, err="")
        self.xs("xenstore-exists", "/bad path", rc=1, err="")

    def test_exists_relative(self):
        self.xs("xenstore-write", "/local/domain/0/exrel", "1")
        self.xs("xenstore-exists", "exrel")
        self.xs("xenstore-exists", "exrel/nope", rc=1)

    def test_rm_leaf_and_subtree(self):
        self.xs("xenstore-write", "/rm/a/b/c", "1", "/rm/a/d", "2", "/rm/e", "3")
        self.xs("xenstore-rm", "/rm/a/b/c", out="", err="")
        self.xs("xenstore-exists", "/rm/a/b/c", rc=1)
        self.xs("xenstore-exists", "/rm/a/b")
        self.xs("xenstore-rm", "/rm/a", out="", err="")
        for p in ("/rm/a", "/rm/a/b", "/rm/a/d"):
            self.xs("xenstore-exists", p, rc=1)
        self.xs("xenstore-list", "/rm", out="e\n")

    def test_rm_several(self):
        self.xs("xenstore-write", "/rm2/a", "1", "/rm2/b", "2", "/rm2/c", "3")
        self.xs("xenstore-rm", "/rm2/a", "/rm2/c")
        self.xs("xenstore-list", "/rm2", out="b\n")

    def test_rm_missing(self):
        self.xs("xenstore-write", "/rm3/x", "1")
        # missing node whose parent exists: success
        self.xs("xenstore-rm", "/rm3/nope", out="", err="")
        # missing parent too: failure
        self.xs("xenstore-rm", "/rm3/nope/deeper", rc=1, out="",
                err="xenstore-rm: could not remove path /rm3/nope/deeper\n")
        # the root cannot be removed
        self.xs("xenstore-rm", "/", rc=1, err="xenstore-rm: could not remove path /\n")
        self.xs("xenstore-exists", "/tool/xenstored")

    def test_rm_failure_rolls_back(self):
        # several keys run in one transaction: one failure aborts all
        self.xs("xenstore-write", "/rm4/a", "1", "/rm4/b", "2")
        self.xs("xenstore-rm", "/rm4/a", "/rm4/nope/x", rc=1,
                err="xenstore-rm: could not remove path /rm4/nope/x\n")
        self.xs("xenstore-list", "/rm4", out="a\nb\n")

    def test_rm_tidy(self):
        # -t also removes parents left empty and valueless, walking up
        self.xs("xenstore-write", "/rmt/keep", "k", "/rmt/p1/p2/leaf", "v",
                "/rmt/val/child", "c", "/rmt/sib/a", "1", "/rmt/sib/b", "2")
        self.xs("xenstore-write", "/rmt/val", "has-a-value")
        self.xs("xenstore-rm", "-t", "/rmt/p1/p2/leaf", out="", err="")
        self.xs("xenstore-list", "/rmt", out="keep\nval\nsib\n")
        # parent with a value stays
        self.xs("xenstore-rm", "-t", "/rmt/val/child")
        self.xs("xenstore-list", "/rmt/val", out="")
        self.xs("xenstore-read", "/rmt/val", out="has-a-value\n")
        # parent with other children stays
        self.xs("xenstore-rm", "-t", "/rmt/sib/a")
        self.xs("xenstore-list", "/rmt/sib", out="b\n")
        # tidying up to the top: /rmt2 goes too, '/' and /tool stay
        self.xs("xenstore-write", "/rmt2/x/y", "")
        self.xs("xenstore-rm", "-t", "/rmt2/x/y")
        self.xs("xenstore-exists", "/rmt2", rc=1)
        self.xs("xenstore-exists", "/tool/xenstored")

    def test_rm_relative(self):
        self.xs("xenstore-write", "/local/domain/0/rmrel/a", "1")
        self.xs("xenstore-rm", "rmrel/a")
        self.xs("xenstore-exists", "/local/domain/0/rmrel/a", rc=1)
        self.xs("xenstore-exists", "/local/domain/0/rmrel")


# ---------------------------------------------------------------------------
# xenstore-chmod


class TestChmod(DaemonCase):
    needs = ("xenstore-chmod", "xenstore-write", "xenstore-ls")

    def perms(self, path):
        return self.conn().get_perms(path)

    def test_single_and_multiple(self):
        self.xs("xenstore-write", "/chm/a", "1")
        self.xs("xenstore-chmod", "/chm/a", "r0", out="", err="")
        self.assertEqual(self.perms("/chm/a"), ["r0"])
        self.xs("xenstore-chmod", "/chm/a", "n0", "r5", "b7", "w3")
        self.assertEqual(self.perms("/chm/a"), ["n0", "r5", "b7", "w3"])
        self.xs("xenstore-ls", "-f", "-p", "/chm", out='/chm/a = "1"   (n0,r5,b7,w3)\n')
        self.xs("xenstore-chmod", "/chm/a", "b0")
        self.assertEqual(self.perms("/chm/a"), ["b0"])

    def test_new_children_inherit(self):
        self.xs("xenstore-write", "/chi", "")
        self.xs("xenstore-chmod", "/chi", "n0", "r4")
        self.xs("xenstore-write", "/chi/new/deeper", "x")
        self.assertEqual(self.perms("/chi/new"), ["n0", "r4"])
        self.assertEqual(self.perms("/chi/new/deeper"), ["n0", "r4"])

    def test_recursive(self):
        self.xs("xenstore-write", "/chr/a/b", "1", "/chr/a/c/d", "2", "/chr/e", "3")
        self.xs("xenstore-chmod", "-r", "/chr/a", "b0", "r3")
        for p in ("/chr/a", "/chr/a/b", "/chr/a/c", "/chr/a/c/d"):
            self.assertEqual(self.perms(p), ["b0", "r3"], p)
        self.assertEqual(self.perms("/chr"), ["n0"])
        self.assertEqual(self.perms("/chr/e"), ["n0"])

    def test_upto(self):
        self.xs("xenstore-write", "/chu/a/b/c", "1", "/chu/a/x", "2")
        self.xs("xenstore-chmod", "-u", "/chu/a/b", "n0", "r9")
        for p in ("/chu", "/chu/a", "/chu/a/b"):
            self.assertEqual(self.perms(p), ["n0", "r9"], p)
        for p in ("/chu/a/b/c", "/chu/a/x"):
            self.assertEqual(self.perms(p), ["n0"], p)
        self.assertEqual(self.perms("/"), ["n0"])     # the root is not touched

    def test_upto_and_recursive(self):
        self.xs("xenstore-write", "/chur/a/b/c", "1", "/chur/a/x", "2")
        self.xs("xenstore-chmod", "-u", "-r", "/chur/a/b", "r0", "w6")
        for p in ("/chur", "/chur/a", "/chur/a/b", "/chur/a/b/c"):
            self.assertEqual(self.perms(p), ["r0", "w6"], p)
        self.assertEqual(self.perms("/chur/a/x"), ["n0"])

    def test_upto_relative_is_rolled_back(self):
        # relative -u runs out of '/' separators: the tool exits with its
        # transaction still open; closing the connection must discard it
        self.xs("xenstore-write", "/local/domain/0/churel/x/y", "v")
        self.xs("xenstore-chmod", "-u", "churel/x/y", "b0", rc=1, out="",
                err="xenstore-chmod: Unable to locate path separator '/' in 'churel'\n")
        for p in ("churel", "churel/x", "churel/x/y"):
            self.assertEqual(self.perms("/local/domain/0/" + p), ["n0"], p)

    def test_errors(self):
        self.xs("xenstore-chmod", "/ch/nope", "n0", rc=1, out="",
                err="xenstore-chmod: Error occurred setting permissions on "
                    "'/ch/nope': No such file or directory\n")
        self.xs("xenstore-write", "/ch/e", "1")
        self.xs("xenstore-chmod", "/ch/e", "x5", rc=1,
                err="xenstore-chmod: Invalid permission specification: 'x'\n")
        self.assertEqual(self.perms("/ch/e"), ["n0"])
        # the whole recursive change is one transaction
        self.xs("xenstore-chmod", "-r", "/ch/e", "b0")
        self.assertEqual(self.perms("/ch/e"), ["b0"])


# ---------------------------------------------------------------------------
# xenstore-watch


class TestWatch(DaemonCase):
    needs = ("xenstore-watch", "xenstore-write", "xenstore-rm", "xenstore-chmod")

    def test_events_in_order(self):
        w = self.watcher("xenstore-watch", "-n", "9", "/wt")
        self.assertEqual(w.readline(), "/wt")            # initial event
        steps = [
            (("xenstore-write", "/wt/a", "1"), ["/wt/a"]),
            # implicitly created parents give no events of their own
            (("xenstore-write", "/wt/b/c/d", "2"), ["/wt/b/c/d"]),
            # rewriting the same value still fires
            (("xenstore-write", "/wt/a", "1"), ["/wt/a"]),
            (("xenstore-chmod", "/wt/b/c/d", "n0", "r1"), ["/wt/b/c/d"]),
            # a transaction: events at commit, in order of first access
            (("xenstore-write", "/wt/m2", "x", "/wt/m1", "y"), ["/wt/m2", "/wt/m1"]),
            (("xenstore-write", "/wt", "top"), ["/wt"]),
        ]
        for argv, events in steps:
            self.xs(*argv)
            for ev in events:
                self.assertEqual(w.readline(), ev, argv)
        # the last expected event: removing /wt/b fires for /wt/b
        self.xs("xenstore-rm", "/wt/b")
        self.assertEqual(w.readline(), "/wt/b")
        rc, rest, err = w.finish()
        self.assertEqual((rc, rest, err), (0, b"", b""))

    def test_burst_order(self):
        # distinct writes in quick succession arrive in order
        w = self.watcher("xenstore-watch", "-n", "11", "/wb")
        self.assertEqual(w.readline(), "/wb")
        for i in range(10):
            self.xs("xenstore-write", "/wb/k%d" % i, str(i))
        self.assertEqual([w.readline() for _ in range(10)],
                         ["/wb/k%d" % i for i in range(10)])
        self.assertEqual(w.finish(), (0, b"", b""))

    def test_ancestor_writes_do_not_fire(self):
        w = self.watcher("xenstore-watch", "-n", "3", "/wq/none/deeper")
        self.assertEqual(w.readline(), "/wq/none/deeper")  # even if missing
        self.xs("xenstore-write", "/wq/none/deeper/z", "1")
        self.assertEqual(w.readline(), "/wq/none/deeper/z")
        self.xs("xenstore-write", "/wq/none", "parent")     # no event
        self.xs("xenstore-write", "/wq/other", "sibling")    # no event
        self.xs("xenstore-write", "/wq/none/deeper", "self")
        self.assertEqual(w.readline(), "/wq/none/deeper")
        self.assertEqual(w.finish(), (0, b"", b""))

    def test_relative_watch(self):
        # relative watch paths are reported relative
        w = self.watcher("xenstore-watch", "-n", "3", "wrel")
        self.assertEqual(w.readline(), "wrel")
        self.xs("xenstore-write", "/local/domain/0/wrel/x", "1")
        self.assertEqual(w.readline(), "wrel/x")
        self.xs("xenstore-write", "wrel", "2")
        self.assertEqual(w.readline(), "wrel")
        self.assertEqual(w.finish(), (0, b"", b""))

    def test_several_keys(self):
        w = self.watcher("xenstore-watch", "-n", "4", "/wa", "/wz")
        self.assertEqual([w.readline(), w.readline()], ["/wa", "/wz"])
        self.xs("xenstore-write", "/wz/1", "1")
        self.assertEqual(w.readline(), "/wz/1")
        self.xs("xenstore-write", "/wa", "1")
        self.assertEqual(w.readline(), "/wa")
        self.assertEqual(w.finish(), (0, b"", b""))

    def test_rm_subtree_events(self):
        # removing a subtree: watches on the removed node or its ancestors
        # fire once for the removed node; watches registered exactly on a
        # removed descendant fire for that descendant
        self.xs("xenstore-write", "/wr/a/b/c", "1", "/wr/a/x", "2")
        w = self.watcher("xenstore-watch", "-n", "6", "/wr", "/wr/a/b", "/wr/a/b/c/nope")
        self.assertEqual([w.readline() for _ in range(3)],
                         ["/wr", "/wr/a/b", "/wr/a/b/c/nope"])
        self.xs("xenstore-rm", "/wr/a")
        got = [w.readline(), w.readline()]
        self.assertEqual(sorted(got), ["/wr/a", "/wr/a/b"])
        self.xs("xenstore-write", "/wr/sentinel", "s")
        self.assertEqual(w.readline(), "/wr/sentinel")
        self.assertEqual(w.finish(), (0, b"", b""))

    def test_recursive_chmod_events(self):
        self.xs("xenstore-write", "/wc/a/b", "1")
        w = self.watcher("xenstore-watch", "-n", "4", "/wc")
        self.assertEqual(w.readline(), "/wc")
        self.xs("xenstore-chmod", "-r", "/wc", "n0", "r2")
        self.assertEqual([w.readline() for _ in range(3)], ["/wc", "/wc/a", "/wc/a/b"])
        self.assertEqual(w.finish(), (0, b"", b""))

    def test_no_events_for_failures(self):
        # watch the whole tree; failed commands and abandoned transactions
        # must produce nothing, so the next line is the sentinel
        self.xs("xenstore-write", "/local/domain/0/nfrel/x", "v", "/nf/a", "1")
        w = self.watcher("xenstore-watch", "-n", "2", "/")
        self.assertEqual(w.readline(), "/")
        self.xs("xenstore-rm", "/nf/nope/deeper", rc=1, err=None)
        self.xs("xenstore-chmod", "/nf/nope", "n0", rc=1, err=None)
        self.xs("xenstore-chmod", "-u", "nfrel/x", "b0", rc=1, err=None)
        self.xs("xenstore-rm", "/nf/a", "/nf/nope/x", rc=1, err=None)
        self.xs("xenstore-write", "/nf/bad path", "v", rc=1, err=None)
        self.xs("xenstore-read", "/nf/a", "/nf/nope", rc=1, err=None)
        self.xs("xenstore-write", "/nf-sentinel", "s")
        self.assertEqual(w.readline(), "/nf-sentinel")
        self.assertEqual(w.finish(), (0, b"", b""))
        self.xs("xenstore-read", "/nf/a", out="1\n")

    def test_special_watch(self):
        # @-paths may be watched; the initial event is always delivered
        w = self.watcher("xenstore-watch", "-n", "2", "@releaseDomain", "@introduceDomain")
        self.assertEqual([w.readline(), w.readline()],
                         ["@releaseDomain", "@introduceDomain"])
        self.assertEqual(w.finish(), (0, b"", b""))



if __name__ == "__main__":
    unittest.main()
