#!/usr/bin/env python3
"""A fake S3 GetObject that honours If-None-Match, for lakeftpd's users test.

s3s-fs, the real S3 API server the suite uses, ignores If-None-Match and
answers 200 with the whole body every time, so the branch where S3 answers
304 (and the claim "an unchanged users file costs one small request") needs
this. It follows the GetObject behaviour AWS documents (Amazon S3 API
Reference, GetObject, "If-None-Match"; RFC 9110 section 13.1.2):
  - GET /BUCKET/KEY (path style, as lakeftpd addresses a custom s3_endpoint)
    serves DIR/KEY with ETag = the quoted hex MD5 of the content (what S3
    gives an object written by one PUT);
  - If-None-Match equal to that ETag (or "*"): 304 Not Modified, with the
    ETag header and no body; otherwise 200 with the body;
  - a key that does not exist: 404 with an S3 NoSuchKey XML error;
  - a request without a SigV4 query signature (X-Amz-Signature, as in the
    presigned URLs lakeftpd sends) is 403 AccessDenied. The signature itself
    is not checked here: s3s-fs checks it in every other test.

Usage: fake_s3_conditional.py DIR LOG
Binds 127.0.0.1 on port 0 and prints the port alone on stdout's first line.
LOG gets one line per request: "METHOD PATH STATUS BODY_BYTES".
"""

import hashlib
import os
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = sys.argv[1]
LOG = sys.argv[2]


def error(code, message):
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if status != 304:
            self.wfile.write(body)
        path = urllib.parse.urlsplit(self.path).path
        with open(LOG, "a") as log:
            log.write(f"{self.command} {path} {status} {len(body) if status != 304 else 0}\n")

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if "X-Amz-Signature" not in query:
            return self.answer(403, error("AccessDenied", "no signature"))
        parts = urllib.parse.unquote(url.path).lstrip("/").split("/", 1)
        if len(parts) != 2 or ".." in parts[1].split("/"):
            return self.answer(404, error("NoSuchKey", "The specified key does not exist."))
        try:
            with open(os.path.join(ROOT, parts[1]), "rb") as f:
                body = f.read()
        except FileNotFoundError:
            return self.answer(404, error("NoSuchKey", "The specified key does not exist."))
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        wanted = self.headers.get("If-None-Match")
        if wanted is not None and wanted.strip() in (etag, "*"):
            return self.answer(304, headers=[("ETag", etag)])
        self.answer(200, body, [("ETag", etag), ("Content-Type", "binary/octet-stream")])


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
