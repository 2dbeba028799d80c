"""An S3-shaped HTTP server on 127.0.0.1 that serves a fixed set of keys, whatever they are.

It stands in for an S3-compatible store only where the real one here cannot: SeaweedFS
normalises keys, so it never holds `model/../../x` or `//etc/x`, which AWS S3 (and stores that
follow it) accept from anyone allowed to write into the bucket. It answers the three requests
boto3 makes to download a folder (ListObjectsV2, HeadObject, GetObject), path-style, and
ignores signatures.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

from .loopback_http import LoopbackHTTP


class CraftedBucket(LoopbackHTTP):
    def __init__(self, bucket: str, objects: dict[str, bytes]):
        self.bucket, self.objects = bucket, objects
        super().__init__(self._handler())

    def _handler(self):
        store = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: bytes, kind: str, head: bool = False) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"0"')
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _serve(self, head: bool) -> None:
                url = urlparse(self.path)
                # Split the raw path: `..` and `//` inside a key must reach us as written.
                bucket, _, key = url.path.lstrip("/").partition("/")
                key = unquote(key)
                if bucket != store.bucket:
                    return self._send(404, b"<Error><Code>NoSuchBucket</Code></Error>",
                                      "application/xml", head)
                if not key and "list-type" in parse_qs(url.query):
                    prefix = parse_qs(url.query).get("prefix", [""])[0]
                    return self._send(200, store._listing(prefix), "application/xml", head)
                if key in store.objects:
                    return self._send(200, store.objects[key], "application/octet-stream", head)
                self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml",
                           head)

            def do_GET(self):
                self._serve(head=False)

            def do_HEAD(self):
                self._serve(head=True)

        return Handler

    def _listing(self, prefix: str) -> bytes:
        keys = sorted(key for key in self.objects if key.startswith(prefix))
        contents = "".join(f"<Contents><Key>{escape(key)}</Key><Size>{len(self.objects[key])}"
                           "</Size><ETag>\"0\"</ETag></Contents>" for key in keys)
        return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>{self.bucket}'
                f"</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(keys)}</KeyCount>"
                f"<IsTruncated>false</IsTruncated>{contents}</ListBucketResult>").encode()
