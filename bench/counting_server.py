#!/usr/bin/env python3
"""A stand-in for the Redshift API that counts GetClusterCredentials calls.

    counting_server.py [--delay SECONDS] [--port-file FILE] [--password FIXED]

It listens on 127.0.0.1 on a free port and writes that port to --port-file
(or prints it on stdout). A POST with Action=GetClusterCredentials is answered
after --delay seconds with a fresh password (pw-1, pw-2, ...) that expires in
900 s; with --password every call gets that one password instead (a fake,
for bench/proxy.sh, whose PostgreSQL role has it). GET /count returns the number of such calls so far as plain text.
Any other action gets a 400 with an AWS-style error. Stdlib only, so it runs
with any python3.
"""
import argparse
import os
import datetime
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RESPONSE = (
    '<GetClusterCredentialsResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/">'
    "<GetClusterCredentialsResult>"
    "<DbUser>IAM:{user}</DbUser>"
    "<DbPassword>{password}</DbPassword>"
    "<Expiration>{expiration}</Expiration>"
    "</GetClusterCredentialsResult>"
    "<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
    "</GetClusterCredentialsResponse>"
)
ERROR = (
    '<ErrorResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/">'
    "<Error><Type>Sender</Type><Code>InvalidAction</Code>"
    "<Message>counting_server.py answers only GetClusterCredentials</Message></Error>"
    "<RequestId>r</RequestId></ErrorResponse>"
)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 64 callers at once must not overflow the listen backlog

    def __init__(self, address, delay, password=None):
        super().__init__(address, Handler)
        self.delay = delay
        self.password = password
        self.calls = 0
        self.mutex = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/count":
            with self.server.mutex:
                n = self.server.calls
            self.reply(200, f"{n}\n", "text/plain")
        else:
            self.reply(404, "not found\n", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if form.get("Action", [""])[0] != "GetClusterCredentials":
            self.reply(400, ERROR)
            return
        with self.server.mutex:
            self.server.calls += 1
            n = self.server.calls
        if self.server.delay > 0:
            time.sleep(self.server.delay)
        expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=900)
        user = form.get("DbUser", ["bench"])[0]
        self.reply(200, RESPONSE.format(user=user, password=self.server.password or f"pw-{n}", expiration=expiration.strftime("%Y-%m-%dT%H:%M:%SZ")))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--port-file")
    parser.add_argument("--password", help="answer every call with this password, not pw-N")
    args = parser.parse_args()
    server = Server(("127.0.0.1", 0), args.delay, args.password)
    port = server.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    else:
        print(port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
