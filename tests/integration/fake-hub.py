#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A model hub, an Ollama registry and a plain file server on 127.0.0.1, for slmctl pull's tests.

Serves the files of MODELS_DIR the way the real services answer:
  GET  /api/models/test-org/stories-GGUF          the hub's model API (siblings)
  HEAD /test-org/stories-GGUF/resolve/main/FILE   302 to localhost's /cdn/SHA256 with
                                                  X-Linked-Etag/-Size
  GET  /v2/library/stories/manifests/TAG          an Ollama manifest (TAG: latest, tied)
  GET  /v2/library/stories/blobs/sha256:HEX       307 to /cdn/HEX
  GET  /files/NAME                                the file, with Content-Length
  GET  /chunked/NAME                              the file without Content-Length
/cdn/ and /files/ honour Range. The file STATE_DIR/mode, read at each request, makes the
server misbehave: "slow" (16 KiB every 20 ms), "corrupt" (one byte changed), "drop" (the
connection closes at half the file), "close" (it closes after the headers), "ignore-range"
(always the whole file). Every request is
logged to STATE_DIR/requests.log as "METHOD PATH RANGE AUTH" (AUTH: whether an
Authorization header came).
"""
import hashlib
import http.server
import json
import os
import sys
import time

models_dir, state_dir = sys.argv[1], sys.argv[2]

# repository file -> file in MODELS_DIR (None: listed but not served, like a split part)
REPO = {
    "README.md": None,
    "stories260K-f32.gguf": "stories260K-f32.gguf",
    "stories260K-f16.gguf": "stories260K-f16.gguf",
    "gguf/stories260K-Q8_0.gguf": "stories260K-q8_0.gguf",
    "stories260K-Q4_0-00001-of-00002.gguf": None,
    "stories260K-Q4_0-00002-of-00002.gguf": None,
}
OLLAMA_TAGS = {"latest": "stories260K-f32.gguf", "tied": "stories260K-f32-tied.gguf"}
FILES = sorted(f for f in os.listdir(models_dir) if f.endswith(".gguf"))
SHA = {}
for f in FILES:
    with open(os.path.join(models_dir, f), "rb") as fh:
        SHA[hashlib.sha256(fh.read()).hexdigest()] = f
BY_NAME = {v: k for k, v in SHA.items()}


def mode():
    try:
        with open(os.path.join(state_dir, "mode")) as fh:
            return fh.read().strip()
    except OSError:
        return "normal"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        pass

    def log(self):
        with open(os.path.join(state_dir, "requests.log"), "a") as fh:
            auth = "auth" if self.headers.get("Authorization") else "-"
            fh.write(f"{self.command} {self.path} {self.headers.get('Range', '-')} {auth}\n")

    def reply(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def json(self, code, obj):
        self.reply(code, json.dumps(obj).encode(), [("Content-Type", "application/json")])

    def send_file(self, name, length=True):
        with open(os.path.join(models_dir, name), "rb") as fh:
            data = fh.read()
        m = mode()
        if m == "corrupt":
            data = data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1 :]
        start, rng = 0, self.headers.get("Range")
        if rng and m != "ignore-range" and rng.startswith("bytes=") and rng.endswith("-"):
            start = int(rng[6:-1])
            if start >= len(data):
                self.reply(416, headers=[("Content-Range", f"bytes */{len(data)}")])
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        if length:
            self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if self.command == "HEAD":
            return
        if m == "close":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        pos = start
        while pos < len(data):
            end = min(pos + 16384, len(data))
            if m == "drop" and pos < len(data) // 2 <= end:
                end = len(data) // 2
                self.wfile.write(data[pos:end])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(data[pos:end])
            pos = end
            if m == "slow":
                self.wfile.flush()
                time.sleep(0.02)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        try:
            self.answer()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away: what several tests do on purpose

    def answer(self):
        self.log()
        path = self.path.split("?")[0]
        hub = "/test-org/stories-GGUF/resolve/main/"
        if path == "/api/models/test-org/stories-GGUF":
            self.json(200, {"id": "test-org/stories-GGUF",
                            "siblings": [{"rfilename": f} for f in REPO]})
        elif path.startswith("/api/models/"):
            self.json(401, {"error": "Repository not found"})
        elif path.startswith(hub):
            f = REPO.get(path[len(hub):])
            if not f:
                self.json(404, {"error": "Entry not found"})
                return
            sha = BY_NAME[f]
            size = os.path.getsize(os.path.join(models_dir, f))
            # to another host, as the hub's CDN is: "localhost" is not "127.0.0.1" to curl
            port = self.server.server_address[1]
            self.reply(302, headers=[("Location", f"http://localhost:{port}/cdn/{sha}?signature=x"),
                                     ("X-Linked-Etag", f'"{sha}"'), ("X-Linked-Size", str(size)),
                                     ("ETag", '"0123abcd"')])
        elif path.startswith("/cdn/") and path[5:] in SHA:
            self.send_file(SHA[path[5:]])
        elif path.startswith("/v2/library/stories/manifests/"):
            f = OLLAMA_TAGS.get(path.rsplit("/", 1)[1])
            if not f:
                self.json(404, {"errors": [{"code": "MANIFEST_UNKNOWN"}]})
                return
            self.json(200, {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": "sha256:" + "0" * 64, "size": 2},
                "layers": [
                    {"mediaType": "application/vnd.ollama.image.license",
                     "digest": "sha256:" + "1" * 64, "size": 10},
                    {"mediaType": "application/vnd.ollama.image.model",
                     "digest": "sha256:" + BY_NAME[f],
                     "size": os.path.getsize(os.path.join(models_dir, f))},
                ]})
        elif path.startswith("/v2/library/stories/blobs/sha256:") and path[33:] in SHA:
            self.reply(307, headers=[("Location", f"/cdn/{path[33:]}")])
        elif path.startswith("/files/") and path[7:] in FILES:
            self.send_file(path[7:])
        elif path.startswith("/chunked/") and path[9:] in FILES:
            self.send_file(path[9:], length=False)
        else:
            self.json(404, {"error": "not found"})


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(os.path.join(state_dir, "port.tmp"), "w") as fh:
    fh.write(str(server.server_address[1]))
os.rename(os.path.join(state_dir, "port.tmp"), os.path.join(state_dir, "port"))
server.serve_forever()
