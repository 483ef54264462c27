#!/usr/bin/python3
"""The two-host Xen lab's agent in each dom0 (deploy/xenlab-migrate.sh).

    node-agent.py serve IP     (SHARE/test.sh runs it once the lab's init
                               has its guest up): bring the lab network's
                               NIC up as IP/24, then serve on IP until told
                               to stop:
                                 :8002  `xl migrate-receive`, one per
                                        connection, its stdin and stdout
                                        the connection
                                 :8003  the orchestrator's commands: one
                                        JSON line {"cmd": SH, "timeout": S}
                                        per connection, answered with
                                        {"rc": N, "out": TEXT}; "__exit__"
                                        ends the agent (then the lab's
                                        init powers dom0 off)
    node-agent.py send IP ...  `xl migrate -s "node-agent.py send" DOMAIN
                               IP` runs this with IP and the receiver's
                               command after it: connect to IP:8002 and
                               relay stdin and stdout (xl speaks its
                               migration protocol over them)

The network is the lab's own: two QEMUs and the host's third member on a
bridge inside a network namespace that deploy/xenlab-migrate.sh creates;
nothing here is reachable from anywhere else.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

MIGRATE_PORT = 8002
COMMAND_PORT = 8003


def log(msg):
    line = "XSR-AGENT[%.2fs] %s" % (time.monotonic(), msg)
    print(line, flush=True)
    try:
        with open("/mnt/host/results/agent.log", "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def sh(cmd, timeout=60):
    try:
        r = subprocess.run(["bash", "-c", cmd], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if e.stdout else ""
        return 124, out + "\n(timed out after %s s)" % timeout


def net_up(ip):
    try:
        with open("/mnt/host/nic-module") as f:
            mod = f.read().strip() or "virtio_net"
    except OSError:
        mod = "virtio_net"
    sh("modprobe %s" % mod, 30)
    dev = None
    for _ in range(100):
        for d in sorted(os.listdir("/sys/class/net")):
            if d != "lo" and not d.startswith(("vif", "xenbr", "tap")):
                dev = d
                break
        if dev:
            break
        time.sleep(0.1)
    if not dev:
        log("no network device")
        return False
    rc, out = sh("ip link set lo up; ip addr add %s/24 dev %s; ip link set %s up"
                 % (ip, dev, dev), 30)
    log("network: %s %s/24 (rc %d) %s" % (dev, ip, rc, out.strip()))
    return rc == 0


def serve_migrate(ip):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, MIGRATE_PORT))
    s.listen(4)
    while True:
        c, peer = s.accept()
        log("migration from %s: xl migrate-receive" % (peer,))
        out = open("/mnt/host/results/migrate-receive.log", "ab")
        p = subprocess.Popen(["xl", "migrate-receive"], stdin=c.fileno(),
                             stdout=c.fileno(), stderr=out, close_fds=True)
        c.close()
        threading.Thread(target=lambda p=p, out=out: (p.wait(), out.close(),
                         log("xl migrate-receive exited %d" % p.returncode)),
                         daemon=True).start()


def serve_commands(ip, done):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, COMMAND_PORT))
    s.listen(4)
    while not done.is_set():
        c, _ = s.accept()
        try:
            f = c.makefile("rb")
            req = json.loads(f.readline().decode())
            cmd = req.get("cmd", "")
            if cmd == "__exit__":
                c.sendall(b'{"rc": 0, "out": "bye"}\n')
                done.set()
            else:
                rc, out = sh(cmd, float(req.get("timeout", 60)))
                c.sendall(json.dumps({"rc": rc, "out": out}).encode() + b"\n")
        except (OSError, ValueError) as e:
            log("command connection: %s" % e)
        finally:
            c.close()


def serve(ip):
    if not net_up(ip):
        return 1
    done = threading.Event()
    threading.Thread(target=serve_migrate, args=(ip,), daemon=True).start()
    threading.Thread(target=serve_commands, args=(ip, done),
                     daemon=True).start()
    log("serving on %s:%d (commands) and :%d (migrations)"
        % (ip, COMMAND_PORT, MIGRATE_PORT))
    # bounded: the orchestrator's own timeout is shorter
    done.wait(1800)
    log("done")
    return 0


def send(ip):
    c = socket.create_connection((ip, MIGRATE_PORT), timeout=60)
    c.settimeout(None)

    def up():
        while True:
            b = os.read(0, 65536)
            if not b:
                break
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=up, daemon=True)
    t.start()
    while True:
        b = c.recv(65536)
        if not b:
            break
        os.write(1, b)
    return 0


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        return serve(sys.argv[2])
    if len(sys.argv) >= 3 and sys.argv[1] == "send":
        return send(sys.argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
