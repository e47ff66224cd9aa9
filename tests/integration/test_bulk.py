"""100 MiB through a tunnel, both ways, checked by sha256 (curl as the client)."""

import hashlib
import json
import os
import subprocess
import time
import unittest

import backend
import harness

SIZE = 100 * 1024 * 1024
SEED = 42
LIMIT = 120  # seconds per transfer


class BulkTest(harness.ProxerTestCase):
    @classmethod
    def start_class_processes(cls):
        cls.be = harness.start_backend(cls.workdir, registry=cls.class_procs)
        cls.gw = harness.start_gateway(cls.workdir, registry=cls.class_procs)
        cls.ag = harness.start_agent(cls.workdir, cls.gw.ports.agent,
                                     [harness.tunnel_spec("bulk", cls.be.port)],
                                     registry=cls.class_procs)
        harness.wait_tunnel(cls.gw.ports.admin, "bulk", procs=[cls.gw, cls.ag])
        cls.base = "http://127.0.0.1:%d/t/bulk" % cls.gw.ports.listen

    @classmethod
    def upload_file(cls):
        """The 100 MiB upload payload, written once per class."""
        path = os.path.join(cls.workdir, "upload.bin")
        if not os.path.exists(path):
            with open(path + ".tmp", "wb") as f:
                for block in backend.gen_iter(SIZE, SEED + 1):
                    f.write(block)
            os.rename(path + ".tmp", path)
        return path

    def test_download_100mib(self):
        expected = backend.gen_sha256(SIZE, SEED)
        headers_path = os.path.join(self.workdir, "download.headers")
        cmd = ["curl", "-sS", "--fail", "--max-time", str(LIMIT), "-D", headers_path,
               "%s/bytes?n=%d&seed=%d" % (self.base, SIZE, SEED)]
        start = time.monotonic()
        # Hash while streaming: no 100 MiB file, no second download.
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            digest = hashlib.sha256()
            count = 0
            while True:
                block = proc.stdout.read(1 << 20)
                if not block:
                    break
                digest.update(block)
                count += len(block)
            try:
                err = proc.stderr.read()
                rc = proc.wait(timeout=LIMIT + 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
        elapsed = time.monotonic() - start
        self.assertEqual(rc, 0, err.decode(errors="replace"))
        with open(headers_path, "rb") as f:
            head = f.read().decode("latin-1")
        sha_header = [l.split(":", 1)[1].strip() for l in head.splitlines()
                      if l.lower().startswith("x-sha256:")]
        self.assertEqual(count, SIZE)
        self.assertEqual(sha_header, [expected], head)
        self.assertEqual(digest.hexdigest(), expected)
        print("\n  download 100 MiB in %.2f s (%.0f MiB/s)" % (elapsed, SIZE / elapsed / 2**20))

    def _upload(self, *extra):
        path = self.upload_file()
        expected = {"bytes": SIZE, "sha256": backend.gen_sha256(SIZE, SEED + 1)}
        start = time.monotonic()
        res = harness.curl("--fail", "--data-binary", "@" + path,
                           "-H", "Content-Type: application/octet-stream", *extra,
                           self.base + "/upload", timeout=LIMIT)
        elapsed = time.monotonic() - start
        self.assertEqual(res.returncode, 0, res.stderr.decode(errors="replace"))
        self.assertEqual(json.loads(res.stdout), expected)
        return elapsed

    def test_upload_100mib_content_length(self):
        elapsed = self._upload()
        print("\n  upload 100 MiB (Content-Length) in %.2f s" % elapsed)

    def test_upload_100mib_chunked(self):
        elapsed = self._upload("-H", "Transfer-Encoding: chunked")
        print("\n  upload 100 MiB (chunked) in %.2f s" % elapsed)


if __name__ == "__main__":
    unittest.main()
