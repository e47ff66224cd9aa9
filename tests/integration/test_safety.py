"""Request safety ([http]): path normalisation before routing and again after a route's prefix
rewrite (traversal refused with 400 path_traversal), bad escapes and bytes refused, header names
with underscores dropped or refused, X-Forwarded-* from an untrusted client replaced and from a
trusted proxy kept, hidden response headers, and request smuggling refused on a configured route
to a direct upstream. A real backend (backend.py) shows what arrived."""

import json
import os
import time
import uuid

import harness

ROUTES = """
[[routes]]
name = "admin"
path_prefix = "/admin/"
prefix_rewrite = "/"
cluster = "direct"
[routes.request_headers]
set = {{ "X-Route" = "admin" }}

[[routes]]
name = "public"
path_prefix = "/public/"
prefix_rewrite = "/"
cluster = "direct"
[routes.request_headers]
set = {{ "X-Route" = "public" }}

[[routes]]
name = "strip"
path_prefix = "/api"
strip_prefix = true
cluster = "direct"

[[routes]]
name = "files"
path_prefix = "/static"
prefix_rewrite = "/files/"
cluster = "direct"

[[routes]]
name = "rest"
path_prefix = "/"
cluster = "direct"

[clusters.direct]
endpoints = ["http://127.0.0.1:{port}"]
"""

# Defaults, except hidden response headers and a trusted network the test client is not in.
STRICT = """
[http]
hide_response_headers = ["Server", "X-Resp-End2End"]
trusted_proxies = ["192.0.2.0/24"]
""" + ROUTES

# The other choices: underscores refused, encoded slashes decoded, slashes merged, and the
# loopback client trusted as a proxy.
LENIENT = """
[http]
headers_with_underscores = "reject"
escaped_slashes = "decode"
merge_slashes = true
trusted_proxies = ["127.0.0.0/8", "::1"]
""" + ROUTES

OFF = """
[http]
normalize_path = false
headers_with_underscores = "allow"
""" + ROUTES


def header_values(info, name):
    return [v for k, v in info["headers"] if k.lower() == name.lower()]


class SafetyTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, cls.class_procs)
        cls.gw = {}
        for name, text in (("strict", STRICT), ("lenient", LENIENT), ("off", OFF)):
            conf = os.path.join(cls.workdir, "gateway-%s.toml" % name)
            with open(conf, "w") as f:
                f.write(text.format(port=cls.be.port))
            cls.gw[name] = harness.start_gateway(cls.workdir, registry=cls.class_procs,
                                                 extra=["--config", conf], name="gateway-" + name)

    def req(self, path, gw="strict", headers=None, method="GET"):
        return harness.http_request(method, self.gw[gw].ports.listen, path, host="app.example",
                                    headers=headers)

    def echo(self, path, gw="strict", headers=None):
        status, _, body = self.req(path, gw, headers)
        self.assertEqual(status, 200, body)
        return json.loads(body)

    def backend_saw(self, marker):
        reqs = harness.get_json(self.be.port, "/__stats")["requests"]
        return [r for r in reqs if marker in r["path"]]

    def refused(self, path, code, gw="strict", headers=None):
        """The request gets 400 with X-Proxer-Error `code`, and never reaches the backend."""
        marker = uuid.uuid4().hex
        sep = "&" if "?" in path else "?"
        status, headers, body = self.req(path + sep + "m=" + marker, gw, headers)
        self.assertEqual(status, 400, body)
        self.assertEqual(headers.get("x-proxer-error"), code, body)
        time.sleep(0.1)
        self.assertEqual(self.backend_saw(marker), [])
        return body.decode()

    # paths

    def test_dot_segments_are_resolved_before_routing(self):
        # "/public/../admin/headers" is "/admin/headers": the admin route takes it, and the
        # backend sees the path the route made of it, without any "..".
        info = self.echo("/public/../admin/headers?x=/../y")
        self.assertEqual(header_values(info, "X-Route"), ["admin"])
        self.assertEqual(info["path"], "/headers?x=/../y")  # the query is left alone
        info = self.echo("/public/%2e%2e/admin/./headers")
        self.assertEqual(header_values(info, "X-Route"), ["admin"])
        self.assertEqual(info["path"], "/headers")
        # Unreserved escapes are decoded, others normalised to upper-case hex.
        info = self.echo("/public/%68eaders?q=%2e")
        self.assertEqual(info["path"], "/headers?q=%2e")
        marker = uuid.uuid4().hex
        status, _, _ = self.req("/x/%7e/a%2fb%c3%a9/./?m=" + marker)
        self.assertEqual(status, 404)  # no such backend endpoint; what matters is what arrived
        self.assertEqual([r["path"] for r in self.backend_saw(marker)],
                         ["/x/~/a%2Fb%C3%A9/?m=" + marker])

    def test_traversal_above_the_root_is_refused(self):
        for path in ("/..", "/../etc/passwd", "/public/../../etc/passwd",
                     "/public/%2e%2e/%2E%2E/etc/passwd", "/a/.%2e/..", "/./../x"):
            with self.subTest(path=path):
                body = self.refused(path, "path_traversal")
                self.assertIn("climbs above the root", body)

    def test_traversal_after_the_prefix_rewrite_is_refused(self):
        # path_prefix "/api" (no trailing slash) matches "/api..", and stripping it leaves "..".
        for path in ("/api..", "/api../etc/passwd", "/api%2e%2e/etc/passwd"):
            with self.subTest(path=path):
                body = self.refused(path, "path_traversal")
                self.assertIn("route 'strip'", body)
        body = self.refused("/static../secret", "path_traversal")
        self.assertIn("route 'files'", body)
        # What the rewrite may legitimately produce still goes through.
        self.assertEqual(self.echo("/api/headers?a=..")["path"], "/headers?a=..")
        status, _, _ = self.req("/static/a.css")  # reaches the backend as /files/a.css: 404
        self.assertEqual(status, 404)
        self.assertEqual(len(self.backend_saw("/files/a.css")), 1)

    def test_bad_escapes_bytes_and_backslashes_are_refused(self):
        for path in ("/headers%00.txt", "/headers%zz", "/headers%4", "/public\\..\\admin",
                     "/headers%2", "http://user@app.example/headers", "http:///headers",
                     "app.example:80"):
            with self.subTest(path=path):
                self.refused(path, "bad_path")

    def test_absolute_form_is_forwarded_in_origin_form(self):
        # RFC 9112 3.2.2: the authority of an absolute-form target replaces Host.
        info = self.echo("http://other.example/public/../headers?x=1")
        self.assertEqual(info["path"], "/headers?x=1")
        self.assertEqual(header_values(info, "Host"), ["other.example"])

    def test_lenient_gateway_decodes_slashes_and_merges(self):
        info = self.echo("/public%2F..%2Fadmin%5Cheaders", gw="lenient")
        self.assertEqual(header_values(info, "X-Route"), ["admin"])
        self.assertEqual(info["path"], "/headers")
        info = self.echo("//public//headers", gw="lenient")
        self.assertEqual(header_values(info, "X-Route"), ["public"])
        self.assertEqual(info["path"], "/headers")
        self.refused("/public%2F..%2F..%2Fetc", "path_traversal", gw="lenient")
        # On the strict gateway an encoded slash is kept and separates nothing.
        marker = uuid.uuid4().hex
        status, _, _ = self.req("/public%2F..%2Fadmin?m=" + marker)
        self.assertEqual(status, 404)  # the backend got "/public%2F..%2Fadmin": no such endpoint
        self.assertEqual([r["path"] for r in self.backend_saw(marker)],
                         ["/public%2F..%2Fadmin?m=" + marker])

    def test_normalisation_off_forwards_the_path_as_received(self):
        marker = uuid.uuid4().hex
        status, _, _ = self.req("/x/../y%2e?m=" + marker, gw="off")
        self.assertEqual(status, 404)
        self.assertEqual([r["path"] for r in self.backend_saw(marker)], ["/x/../y%2e?m=" + marker])

    # headers

    def test_underscore_headers_dropped_by_default(self):
        info = self.echo("/headers", headers=[("X_User", "admin"), ("X-User", "guest"),
                                              ("user_id", "7")])
        self.assertEqual(header_values(info, "X-User"), ["guest"])
        self.assertEqual(header_values(info, "X_User"), [])
        self.assertEqual(header_values(info, "user_id"), [])

    def test_underscore_headers_refused_or_allowed(self):
        body = self.refused("/headers", "header_with_underscore", gw="lenient",
                            headers={"X_User": "admin"})
        self.assertIn("X_User", body)
        info = self.echo("/headers", gw="off", headers={"X_User": "admin"})
        self.assertEqual(header_values(info, "X_User"), ["admin"])

    def test_forwarded_headers_from_an_untrusted_client_are_replaced(self):
        info = self.echo("/headers", headers=[
            ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "bank.example"), ("X-Forwarded-Port", "443"),
            ("X-Real-IP", "1.2.3.4"), ("Forwarded", "for=1.2.3.4;proto=https")])
        self.assertEqual(header_values(info, "X-Forwarded-For"), ["127.0.0.1"])
        self.assertEqual(header_values(info, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(header_values(info, "X-Forwarded-Host"), ["app.example"])
        self.assertEqual(header_values(info, "X-Forwarded-Port"), [])
        self.assertEqual(header_values(info, "X-Real-IP"), [])
        self.assertEqual(header_values(info, "Forwarded"),
                         ["for=127.0.0.1;proto=http;host=app.example"])

    def test_forwarded_headers_from_a_trusted_proxy_are_kept(self):
        info = self.echo("/headers", gw="lenient", headers=[
            ("X-Forwarded-For", "203.0.113.5"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "www.example"), ("X-Real-IP", "203.0.113.5")])
        self.assertEqual(header_values(info, "X-Forwarded-For"), ["203.0.113.5, 127.0.0.1"])
        self.assertEqual(header_values(info, "X-Forwarded-Proto"), ["https"])
        self.assertEqual(header_values(info, "X-Forwarded-Host"), ["www.example"])
        self.assertEqual(header_values(info, "X-Real-IP"), ["203.0.113.5"])

    def test_hidden_response_headers(self):
        status, headers, body = self.req("/hop-response")
        self.assertEqual((status, body), (200, b"hop\n"))
        self.assertIsNone(headers.get("Server"))
        self.assertIsNone(headers.get("X-Resp-End2End"))
        self.assertIsNotNone(headers.get("Date"))
        # The other gateway hides nothing: the backend does send them.
        status, headers, _ = self.req("/hop-response", gw="lenient")
        self.assertEqual(status, 200)
        self.assertIn("Python", headers.get("Server", ""))
        self.assertEqual(headers.get("X-Resp-End2End"), "1")

    # smuggling: refused by the head checks on a configured route too

    def test_smuggling_attempts_on_a_route_are_refused(self):
        port = self.gw["strict"].ports.listen
        for head in (b"POST /echo?m=%s HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                     b"GET /headers?m=%s HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
                     b"POST /echo?m=%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"):
            marker = uuid.uuid4().hex.encode()
            with self.subTest(head=head[:60]):
                data = head % marker + b"GET /hello?m=%s-smuggled HTTP/1.1\r\nHost: a\r\n\r\n" % (
                    marker)
                raw = harness.raw_request(port, data, timeout=10)
                status, fields, _ = harness.parse_response(raw)
                self.assertEqual(status, 400, raw[:300])
                self.assertEqual(fields.get("x-proxer-error"), "bad_request")
                time.sleep(0.1)
                self.assertEqual(self.backend_saw(marker.decode()), [])
