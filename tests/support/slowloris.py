#!/usr/bin/env python3
"""A slowloris client for tests/integration/https_slowloris.sh.

Opens COUNT connections to HOST:PORT from one address, each of which (after a TLS handshake
when --cafile is given) sends the start of a GET request and then one more header byte every
second, never the blank line that ends the headers. Until --refill-until seconds, it replaces
connections the server closes, at most --refill-rate a second, so that the server finds its
slots for the address full whenever someone else connects. Runs for --duration seconds, then
writes a JSON summary to --out: how many connections it opened, how many the server closed
(EOF or reset) and at what age, and how many were still open. Writes --ready once the first
COUNT connections are open (or failed).
"""
import argparse
import errno
import json
import resource
import selectors
import socket
import ssl
import time

HEAD = b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


class Conn:
    def __init__(self, sock):
        self.sock = sock  # an SSLSocket once the TLS handshake starts
        self.opened = time.monotonic()
        self.state = "connecting"  # connecting, handshake, trickling, closed
        self.closed_at = None
        self.next_byte = 0.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--source", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1100)
    ap.add_argument("--duration", type=float, default=15)
    ap.add_argument("--refill-rate", type=float, default=0)
    ap.add_argument("--refill-until", type=float, default=0)
    ap.add_argument("--cafile")
    ap.add_argument("--ready", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = None
    if a.cafile:
        ctx = ssl.create_default_context(cafile=a.cafile)
        ctx.check_hostname = False

    sel = selectors.DefaultSelector()
    conns = []
    failed = 0
    start = time.monotonic()

    def close(c):
        if c.state == "closed":
            return
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
        c.state = "closed"
        c.closed_at = time.monotonic()

    def send_head(c):
        c.sock.send(HEAD)
        c.state = "trickling"
        c.next_byte = time.monotonic() + 1
        sel.modify(c.sock, selectors.EVENT_READ, c)

    def handshake(c):
        try:
            c.sock.do_handshake()
        except ssl.SSLWantReadError:
            sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        except ssl.SSLWantWriteError:
            sel.modify(c.sock, selectors.EVENT_WRITE, c)
            return
        send_head(c)

    def dial():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((a.source, 0))
        s.setblocking(False)
        err = s.connect_ex((a.host, a.port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            return False
        c = Conn(s)
        conns.append(c)
        sel.register(s, selectors.EVENT_WRITE, c)
        return True

    for _ in range(a.count):
        failed += not dial()
    first = list(conns)
    ready_written = False
    refilled = 0

    while time.monotonic() - start < a.duration:
        now = time.monotonic()
        if not ready_written and all(c.state in ("trickling", "closed") for c in first):
            with open(a.ready, "w") as f:
                f.write("%d\n" % len(conns))
            ready_written = True
        for key, events in sel.select(timeout=0.1):
            c = key.data
            try:
                if c.state == "connecting":
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        close(c)
                        continue
                    if ctx:
                        sel.unregister(c.sock)
                        c.sock = ctx.wrap_socket(c.sock, do_handshake_on_connect=False, server_hostname="localhost")
                        sel.register(c.sock, selectors.EVENT_WRITE, c)
                        c.state = "handshake"
                        handshake(c)
                    else:
                        send_head(c)
                elif c.state == "handshake":
                    handshake(c)
                elif events & selectors.EVENT_READ:
                    data = c.sock.recv(4096)
                    if not data:
                        close(c)  # EOF: the server closed it
            except (ssl.SSLError, OSError):
                close(c)  # reset, or the handshake cut short: closed by the server too
        now = time.monotonic()
        if ready_written and now - start < a.refill_until:
            closed = sum(1 for c in conns if c.state == "closed")
            allowed = int((now - start) * a.refill_rate) - refilled
            for _ in range(max(0, min(allowed, closed - refilled))):
                failed += not dial()
                refilled += 1
        for c in conns:
            if c.state == "trickling" and now >= c.next_byte:
                try:
                    c.sock.send(b"a")
                except (ssl.SSLError, OSError):
                    close(c)
                c.next_byte = now + 1

    end = time.monotonic()
    ages = sorted(c.closed_at - c.opened for c in conns if c.state == "closed")
    open_ages = [end - c.opened for c in conns if c.state != "closed"]
    summary = {
        "opened": len(conns),
        "connect_failed": failed,
        "refilled": refilled,
        "closed_by_server": len(ages),
        "still_open": len(open_ages),
        "oldest_open_s": round(max(open_ages), 2) if open_ages else 0,
        "max_age_at_close_s": round(ages[-1], 2) if ages else 0,
        "closed_before_1s": sum(1 for x in ages if x < 1),
        "closed_after": {str(t): sum(1 for x in ages if x >= t) for t in (5, 8, 9)},
    }
    with open(a.out, "w") as f:
        json.dump(summary, f)
    for c in conns:
        close(c)


if __name__ == "__main__":
    main()
