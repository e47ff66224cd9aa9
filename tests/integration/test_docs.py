"""docs/CONFIG.md documents every configuration key the loader accepts: the keys are read from
src/config/load.cpp (the only place that names them), each must appear as a table row
"| `key` |" in the section of its table, and no documented key may be one the loader rejects."""

import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READERS = r"(?:string|secret|duration|size|count|boolean|log_format|tables)"


def loader_keys():
    """{'gateway': {'listen', 'tls.cert', ...}, 'agent': {...}} from load.cpp."""
    with open(os.path.join(ROOT, "src", "config", "load.cpp")) as f:
        src = f.read()
    out = {}
    for kind in ("gateway", "agent"):
        body = re.search(r"void read_%s\(Reader& r, \w+Config& c\) \{(.*?)\n\}\n" % kind, src, re.S)
        assert body, "read_%s not found in load.cpp" % kind
        keys = set()
        var_section = {"r": ""}
        for line in body.group(1).splitlines():
            m = re.search(r"auto (\w+) = r\.section\(\"(\w+)\"\)", line)
            if m:
                var_section[m.group(1)] = m.group(2) + "."
                continue
            m = re.search(r"r\.tables\(\"(\w+)\", \[&\]\(Reader& (\w+)", line)
            if m:
                var_section[m.group(2)] = m.group(1) + "[]."
                continue
            m = re.search(r"\b(\w+)\.%s\(\"(\w+)\"" % READERS, line)
            if m and m.group(1) in var_section:
                keys.add(var_section[m.group(1)] + m.group(2))
        out[kind] = keys
    return out


def documented(kind):
    """Keys in the tables under '## Gateway keys' or '## Agent keys' of CONFIG.md."""
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        doc = f.read()
    title = "## Gateway keys" if kind == "gateway" else "## Agent keys"
    start = doc.index(title)
    end = doc.index("\n## ", start + 1)
    keys = set()
    prefix = ""
    for line in doc[start:end].splitlines():
        h = re.match(r"### `\[(\[)?(\w+)\]?\]`", line)
        if h:
            prefix = h.group(2) + ("[]." if h.group(1) else ".")
            continue
        if line.startswith("### "):
            prefix = ""
            continue
        m = re.match(r"\| `(\w+)` \|", line)
        if m:
            keys.add(prefix + m.group(1))
    return keys


class ConfigDocsTest(unittest.TestCase):
    def test_every_key_is_documented_and_nothing_else(self):
        keys = loader_keys()
        for kind in ("gateway", "agent"):
            doc = documented(kind)
            # Table-of-tables keys (tunnels) are documented by their fields.
            loader = {k for k in keys[kind] if k != "tunnels"}
            self.assertTrue(loader, kind)
            self.assertEqual(sorted(loader - doc), [], "%s keys missing from CONFIG.md" % kind)
            self.assertEqual(sorted(doc - loader), [], "%s keys documented but not loaded" % kind)


if __name__ == "__main__":
    unittest.main()
