"""docs/CONFIG.md documents every configuration key the loader accepts: the keys are read from
src/config/load.cpp (the only place that names them), each must appear as a table row
"| `key` |" in the section of its table, and no documented key may be one the loader rejects."""

import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
READERS = r"(?:string|secret|duration|size|count|boolean|log_format|strings|string_map|status_ranges)"


def loader_keys():
    """{'gateway': {'listen', 'tls.cert', 'routes[].host', 'clusters.*.lb', ...}, 'agent': ...}
    from load.cpp, and the keys that hold tables of tables (documented by their fields)."""
    with open(os.path.join(ROOT, "src", "config", "load.cpp")) as f:
        src = f.read()
    out = {}
    containers = set()
    # Helpers that read the keys of a table shared by several places (read_health_check): their
    # keys, relative to the Reader they are given.
    helpers = {}
    for m in re.finditer(r"\nvoid (read_\w+)\(Reader& (\w+), [^)]*\) \{(.*?)\n\}\n", src, re.S):
        if m.group(1) in ("read_gateway", "read_agent"):
            continue
        helpers[m.group(1)] = {k.group(1) for k in re.finditer(
            r"\b%s\.%s\(\"(\w+)\"" % (m.group(2), READERS), m.group(3))}
    for kind in ("gateway", "agent"):
        body = re.search(r"void read_%s\(Reader& r, \w+Config& c\) \{(.*?)\n\}\n" % kind, src, re.S)
        assert body, "read_%s not found in load.cpp" % kind
        keys = set()
        var_section = {"r": ""}
        pending = None  # a tables() call whose lambda starts on the next line
        for line in body.group(1).splitlines():
            m = re.search(r"auto (\w+) = (\w+)\.section\(\"(\w+)\"\)", line)
            if m and m.group(2) in var_section:
                var_section[m.group(1)] = var_section[m.group(2)] + m.group(3) + "."
                continue
            m = re.search(r"\b(\w+)\.(tables|named_tables)\(\s*$", line)
            if m and m.group(1) in var_section:
                pending = m.group(1), m.group(2)
                continue
            m = re.search(r"\b(\w+)\.(tables|named_tables)\(\"(\w+)\", \[&\]\(Reader& (\w+)", line)
            if not m and pending:
                m2 = re.search(r"\"(\w+)\",\s*$", line)
                if m2:
                    pending = pending + (m2.group(1),)
                    continue
                m2 = re.search(r"\[&\]\(Reader& (\w+)", line)
                if m2 and len(pending) == 3:
                    m = (pending[0], pending[1], pending[2], m2.group(1))
                    pending = None
            if m:
                parent, fn, key, var = (m[0], m[1], m[2], m[3]) if isinstance(m, tuple) else \
                    (m.group(1), m.group(2), m.group(3), m.group(4))
                if parent in var_section:
                    base = var_section[parent] + key
                    containers.add(base)
                    var_section[var] = base + ("[]." if fn == "tables" else ".*.")
                continue
            m = re.search(r"\b(read_\w+)\((\w+),", line)
            if m and m.group(1) in helpers and m.group(2) in var_section:
                keys.update(var_section[m.group(2)] + k for k in helpers[m.group(1)])
                continue
            m = re.search(r"\b(\w+)\.%s\(\"(\w+)\"" % READERS, line)
            if m and m.group(1) in var_section:
                keys.add(var_section[m.group(1)] + m.group(2))
        out[kind] = keys
    return out, containers


def documented(kind):
    """Keys in the tables under '## Gateway keys' or '## Agent keys' of CONFIG.md. A heading
    `[name]` or `[[name]]` or `[name.NAME]` sets the prefix of the rows below it; a row key may
    itself be a path (`request_headers.set`, `endpoints[].url`)."""
    with open(os.path.join(ROOT, "docs", "CONFIG.md")) as f:
        doc = f.read()
    title = "## Gateway keys" if kind == "gateway" else "## Agent keys"
    start = doc.index(title)
    end = doc.index("\n## ", start + 1)
    keys = set()
    prefix = ""
    for line in doc[start:end].splitlines():
        h = re.match(r"### `\[(\[)?(\w+)(\.NAME)?\]?\]`", line)
        if h:
            prefix = h.group(2) + ("[]." if h.group(1) else ".*." if h.group(3) else ".")
            continue
        if line.startswith("### "):
            prefix = ""
            continue
        m = re.match(r"\| `([\w.\[\]]+)` \|", line)
        if m:
            keys.add(prefix + m.group(1))
    return keys


class ConfigDocsTest(unittest.TestCase):
    def test_every_key_is_documented_and_nothing_else(self):
        keys, containers = loader_keys()
        self.assertIn("clusters.*.endpoints", containers)
        self.assertIn("routes[].request_headers.set", keys["gateway"])
        for kind in ("gateway", "agent"):
            doc = documented(kind)
            # Table-of-tables keys (tunnels, routes, ...) are documented by their fields.
            loader = {k for k in keys[kind] if k not in containers}
            doc -= containers  # a container may have its own row (its short form)
            self.assertTrue(loader, kind)
            self.assertEqual(sorted(loader - doc), [], "%s keys missing from CONFIG.md" % kind)
            self.assertEqual(sorted(doc - loader), [], "%s keys documented but not loaded" % kind)


if __name__ == "__main__":
    unittest.main()
