#!/usr/bin/env python3
"""A minimal PostgreSQL client for bench/proxy.sh: connection set-up times and held sessions.

    pgclient.py times RUNS NAME=URL [NAME=URL ...]
        Opens RUNS connections per target, interleaved (one of each target in turn, the
        order alternating), each: connect, startup, login, `select 1`, Terminate. Prints
        one line per connection: NAME MILLISECONDS.
    pgclient.py hold N URL
        Opens N sessions (each up to ReadyForQuery), prints "held N" and keeps them open
        until stdin closes.

URL is host:port/database/user with optional ?tls=CAFILE (SSLRequest, then TLS verified
against CAFILE and the host) and the password in $PGPASSWORD (SCRAM-SHA-256, MD5 or
cleartext, as the server asks). Stdlib only, so it runs with any python3.
"""
import base64
import concurrent.futures
import hashlib
import hmac
import os
import socket
import ssl
import struct
import sys
import time


def msg(tag, body):
    return tag + struct.pack("!i", len(body) + 4) + body


class Conn:
    def __init__(self, url):
        rest, _, query = url.partition("?")
        hostport, database, user = rest.split("/", 2)
        host, port = hostport.rsplit(":", 1)
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if query.startswith("tls="):
            sock.sendall(struct.pack("!ii", 8, 80877103))
            if sock.recv(1) != b"S":
                raise RuntimeError(f"{hostport} refused TLS")
            ctx = ssl.create_default_context(cafile=query[4:])
            sock = ctx.wrap_socket(sock, server_hostname=host)
        self.sock = sock
        self.buf = b""
        params = f"user\0{user}\0database\0{database}\0\0".encode()
        sock.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
        self.login(user)

    def read(self):
        while True:
            if len(self.buf) >= 5:
                tag, n = self.buf[:1], struct.unpack("!i", self.buf[1:5])[0]
                if len(self.buf) >= n + 1:
                    body, self.buf = self.buf[5 : n + 1], self.buf[n + 1 :]
                    if tag == b"E":
                        raise RuntimeError(body.replace(b"\0", b" ").decode(errors="replace"))
                    return tag, body
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk

    def login(self, user):
        password = os.environ.get("PGPASSWORD", "").encode()
        scram = None
        while True:
            tag, body = self.read()
            if tag == b"Z":
                return
            if tag != b"R":
                continue
            code = struct.unpack("!i", body[:4])[0]
            if code == 3:
                self.sock.sendall(msg(b"p", password + b"\0"))
            elif code == 5:
                inner = hashlib.md5(password + user.encode()).hexdigest().encode()
                outer = hashlib.md5(inner + body[4:8]).hexdigest().encode()
                self.sock.sendall(msg(b"p", b"md5" + outer + b"\0"))
            elif code == 10:
                nonce = base64.b64encode(os.urandom(18))
                scram = {"bare": b"n=,r=" + nonce}
                first = b"n,," + scram["bare"]
                self.sock.sendall(msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
            elif code == 11:
                server_first = body[4:]
                f = dict(kv.split(b"=", 1) for kv in server_first.split(b","))
                salted = hashlib.pbkdf2_hmac("sha256", password, base64.b64decode(f[b"s"]), int(f[b"i"]))
                client_key = hmac.digest(salted, b"Client Key", "sha256")
                without_proof = b"c=biws,r=" + f[b"r"]
                auth = scram["bare"] + b"," + server_first + b"," + without_proof
                sig = hmac.digest(hashlib.sha256(client_key).digest(), auth, "sha256")
                proof = bytes(a ^ b for a, b in zip(client_key, sig))
                self.sock.sendall(msg(b"p", without_proof + b",p=" + base64.b64encode(proof)))
            elif code not in (0, 12):
                raise RuntimeError(f"unsupported authentication request {code}")

    def select1(self):
        self.sock.sendall(msg(b"Q", b"select 1\0"))
        while self.read()[0] != b"Z":
            pass

    def close(self):
        try:
            self.sock.sendall(msg(b"X", b""))
        finally:
            self.sock.close()


def times(runs, targets):
    for i in range(runs):
        order = targets if i % 2 == 0 else targets[::-1]
        for name, url in order:
            start = time.perf_counter()
            c = Conn(url)
            c.select1()
            elapsed = time.perf_counter() - start
            c.close()
            print(f"{name} {elapsed * 1000:.3f}", flush=True)


def hold(n, url):
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        conns = list(pool.map(lambda _: Conn(url), range(n)))
    print(f"held {len(conns)}", flush=True)
    sys.stdin.read()
    for c in conns:
        c.sock.close()


def main(argv):
    if len(argv) >= 3 and argv[0] == "times":
        times(int(argv[1]), [tuple(t.split("=", 1)) for t in argv[2:]])
    elif len(argv) == 3 and argv[0] == "hold":
        hold(int(argv[1]), argv[2])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
