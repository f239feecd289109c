#!/usr/bin/env python3
"""A minimal IMDSv2 for the S3 credential tests: the instance-role part only.

Follows AWS's documented behaviour
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html):
- PUT /latest/api/token needs X-aws-ec2-metadata-token-ttl-seconds (1-21600),
  else 400; it answers a token.
- Every GET needs X-aws-ec2-metadata-token with a valid token, else 401.
- GET /latest/meta-data/iam/security-credentials/ names the role;
  GET .../ROLE answers the credentials JSON; anything else is 404.

The credentials come from the JSON file named on the command line
({"AccessKeyId": ..., "SecretAccessKey": ...}), read at every request, so a
test rotates them by rewriting the file. Listens on 127.0.0.1, a free port,
printed on the first line of standard output.
"""

import datetime
import json
import secrets
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = "lakeftpd-test-role"
TOKENS = set()
CREDS_FILE = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="text/plain"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        if self.path != "/latest/api/token":
            return self.answer(404, "Not Found")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return self.answer(400, "Bad Request")
        token = secrets.token_urlsafe(32)
        TOKENS.add(token)
        self.answer(200, token)

    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") not in TOKENS:
            return self.answer(401, "Unauthorized")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            return self.answer(200, ROLE)
        if self.path == base + ROLE:
            with open(CREDS_FILE) as f:
                creds = json.load(f)
            now = datetime.datetime.now(datetime.timezone.utc)
            expiration = now + datetime.timedelta(hours=6)
            doc = {
                "Code": "Success",
                "LastUpdated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "Type": "AWS-HMAC",
                "AccessKeyId": creds["AccessKeyId"],
                "SecretAccessKey": creds["SecretAccessKey"],
                "Token": creds.get("Token", "fake-session-token"),
                "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            return self.answer(200, json.dumps(doc), "application/json")
        self.answer(404, "Not Found")


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
