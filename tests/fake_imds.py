#!/usr/bin/env python3
"""A fake EC2 instance metadata service (IMDSv2 only), for lakeftpd's tests.

Follows the behaviour AWS documents (EC2 User Guide, "Use the Instance
Metadata Service to access instance metadata", "Access instance metadata for
an EC2 instance", error codes):
  - PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds, an
    integer 1..21600 (missing or bad: 400); a PUT carrying X-Forwarded-For
    is refused (403); a PUT to a version path (/2021-03-23/api/token) is 403.
  - every GET needs X-aws-ec2-metadata-token with a live token (missing,
    unknown or expired: 401). IMDSv1 (no token) is refused, as on an
    instance with HttpTokens=required.
  - an absent item is 404 (no user-data; no public IPv4).

Usage: fake_imds.py --state STATE.json [--log LOG] [--listen-after SECONDS]

Binds 127.0.0.1 on port 0 and prints the port alone on stdout's first line.
--listen-after binds at once (so the port is known) but calls listen() only
after SECONDS: until then connections are refused, as at an instance's boot.

STATE.json is re-read on every request, so a test changes the fake's
behaviour by rewriting it (write a temporary file and rename it over):
  {
    "user_data": "text" | null,           # null: 404
    "instance_id": "i-0123456789abcdef0",
    "availability_zone": "ap-northeast-1a",
    "local_ipv4": "10.0.1.5" | null,
    "public_ipv4": "203.0.113.9" | null,  # null: 404 (no public address)
    "not_ready_seconds": 0,               # answer 503 to everything until then
    "tokens_valid_for_gets": null | N,    # a token dies after N GETs (then 401)
    "disabled": false,                    # true: 403 to everything (IMDS turned off)
    "roles": {"ROLE": {...credentials...}} # iam/security-credentials/ (see below)
    "region": "ap-northeast-1",           # placement/region
    "target_lifecycle_state": "InService" | null,
                                          # autoscaling/target-lifecycle-state
    "tags": {"KEY": "VALUE"} | null       # tags/instance/ (metadata tags on)
  }
The last three serve image/lakeftpd-ops.sh (tests/appliance/test_ops.py):
autoscaling/target-lifecycle-state is the steady state the Auto Scaling
group heads the instance to (Amazon EC2 Auto Scaling User Guide, "Retrieve
the target lifecycle state through instance metadata"); tags/instance lists
the instance's tag keys, one per line, and tags/instance/KEY is a tag's
value (EC2 User Guide, "View tags for your EC2 instances using instance
metadata"); null or absent: 404.
Extension point for the S3 issue: "roles" maps an instance-profile role name
to the credentials document served at
/latest/meta-data/iam/security-credentials/ROLE (listed, one per line, at
/latest/meta-data/iam/security-credentials/). Rotating credentials = rewriting
the state file with new values (and a new "Expiration").

--log appends one line per request: "METHOD PATH STATUS".
"""

import argparse
import json
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_TTL = 21600  # 6 hours, the documented maximum.


class Fake:
    def __init__(self, state_path, log_path):
        self.state_path = state_path
        self.log_path = log_path
        self.started = time.monotonic()
        self.lock = threading.Lock()
        # token -> [expiry (monotonic), GETs served]
        self.tokens = {}

    def state(self):
        with open(self.state_path, encoding="utf-8") as f:
            return json.load(f)

    def log(self, line):
        if self.log_path:
            with self.lock, open(self.log_path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


def make_handler(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "EC2ws"
        sys_version = ""

        def log_message(self, *args):
            pass  # the --log file is the record

        def answer(self, status, body=b"", headers=()):
            if isinstance(body, str):
                body = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            fake.log(f"{self.command} {self.path} {status}")

        def not_ready(self, state):
            return time.monotonic() - fake.started < float(state.get("not_ready_seconds") or 0)

        def do_PUT(self):
            state = fake.state()
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if state.get("disabled"):
                return self.answer(403)
            if self.not_ready(state):
                return self.answer(503)
            if self.path != "/latest/api/token":
                # Documented: PUT to a version-specific path is 403.
                return self.answer(403 if self.path.endswith("/api/token") else 404)
            if self.headers.get("X-Forwarded-For") is not None:
                return self.answer(403)
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int(ttl)
            except (TypeError, ValueError):
                return self.answer(400)
            if not 1 <= ttl <= MAX_TTL:
                return self.answer(400)
            token = secrets.token_urlsafe(42)
            with fake.lock:
                fake.tokens[token] = [time.monotonic() + ttl, 0]
            self.answer(200, token, [("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))])

        def do_GET(self):
            state = fake.state()
            if state.get("disabled"):
                return self.answer(403)
            if self.not_ready(state):
                return self.answer(503)
            token = self.headers.get("X-aws-ec2-metadata-token")
            limit = state.get("tokens_valid_for_gets")
            with fake.lock:
                entry = fake.tokens.get(token)
                live = entry is not None and entry[0] > time.monotonic()
                if live and limit is not None and entry[1] >= limit:
                    live = False  # rotated: as if it had expired
                    del fake.tokens[token]
                if live:
                    entry[1] += 1
            if not live:
                return self.answer(401)
            body = lookup(state, self.path)
            if body is None:
                return self.answer(404)
            self.answer(200, body)

    return Handler


def lookup(state, path):
    """The body served at PATH, or None (404)."""
    if path == "/latest/user-data":
        return state.get("user_data")
    simple = {
        "/latest/meta-data/instance-id": "instance_id",
        "/latest/meta-data/placement/availability-zone": "availability_zone",
        "/latest/meta-data/local-ipv4": "local_ipv4",
        "/latest/meta-data/public-ipv4": "public_ipv4",
        "/latest/meta-data/placement/region": "region",
        "/latest/meta-data/autoscaling/target-lifecycle-state": "target_lifecycle_state",
    }
    if path in simple:
        return state.get(simple[path])
    tags = state.get("tags")
    tag_prefix = "/latest/meta-data/tags/instance/"
    if tags is not None and path == tag_prefix:
        return "\n".join(tags)
    if tags is not None and path.startswith(tag_prefix):
        return tags.get(path[len(tag_prefix):])
    roles = state.get("roles") or {}
    prefix = "/latest/meta-data/iam/security-credentials/"
    if path == prefix:
        return "\n".join(roles) if roles else None
    if path.startswith(prefix) and path[len(prefix):] in roles:
        return json.dumps(roles[path[len(prefix):]], indent=2)
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", required=True, help="JSON state file, re-read per request")
    parser.add_argument("--log", help="append 'METHOD PATH STATUS' per request")
    parser.add_argument("--listen-after", type=float, default=0.0,
                        help="refuse connections for this many seconds")
    args = parser.parse_args()
    fake = Fake(args.state, args.log)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake), bind_and_activate=False)
    server.daemon_threads = True
    server.server_bind()
    print(server.server_address[1], flush=True)
    if args.listen_after > 0:
        # Bound but not listening: the kernel refuses connections.
        time.sleep(args.listen_after)
    server.server_activate()
    fake.started = time.monotonic()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
