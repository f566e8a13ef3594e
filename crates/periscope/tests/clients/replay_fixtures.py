"""Replays the client fixtures (tests/fixtures/clients) and prints one JSON
line per statement: what came back, every value as the server's text.

Usage: replay_fixtures.py CONNINFO FIXTURES_DIR

Run by the client matrix test twice, directly and through the gateway. It
speaks through libpq (psycopg 3's `pq` layer), as the tools the fixtures come
from do: a fixture with `-- params:` is sent with the extended protocol and
its parameters as untyped text (PQexecParams), the others as one simple
Query (PQexec, whose last result is reported). Files under sessions/ are
replayed statement by statement on one connection; every other file on a
fresh connection.
"""

import json
import os
import re
import sys

import psycopg
from psycopg import pq


def parse_file(path):
    """[(label, params or None, sql)]."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if os.path.basename(os.path.dirname(path)) == "sessions":
        parts = re.split(r"^-- statement (\d+) \(([^)]*)\)\s*$", text, flags=re.M)
        out = []
        for i in range(1, len(parts), 3):
            label, proto, sql = parts[i], parts[i + 1], parts[i + 2].strip()
            params = None
            m = re.search(r"params (\[.*\])", proto)
            if m:
                params = json.loads(m.group(1))
            elif "extended" in proto:
                params = []
            out.append((label, params, sql))
        return out
    params = None
    body = []
    in_header = True
    for line in text.splitlines():
        if in_header and line.startswith("--"):
            if line.startswith("-- params:"):
                params = json.loads(line[len("-- params:"):].strip())
            continue
        in_header = False
        body.append(line)
    return [("1", params, "\n".join(body).strip())]


def run(conn, sql, params):
    pgconn = conn.pgconn
    if params is None:
        res = pgconn.exec_(sql.encode())
    else:
        res = pgconn.exec_params(
            sql.encode(),
            [None if p is None else str(p).encode() for p in params],
            result_format=pq.Format.TEXT,
        )
    if res.status == pq.ExecStatus.COPY_OUT:
        # COPY ... TO STDOUT (pg_dump's data): the rows as COPY text lines.
        rows = []
        while True:
            n, data = pgconn.get_copy_data(0)
            if n < 0:
                break
            rows.append(bytes(data).decode("utf-8", "replace").rstrip("\n").split("\t"))
        final = pgconn.get_result()
        while pgconn.get_result() is not None:
            pass
        if final is not None and final.status != pq.ExecStatus.COMMAND_OK:
            res = final
        else:
            return {"ok": True, "columns": ["copy"], "rows": rows}
    if res.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        field = lambda f: (res.error_field(f) or b"").decode("utf-8", "replace")
        return {
            "ok": False,
            "code": field(pq.DiagnosticField.SQLSTATE),
            "message": field(pq.DiagnosticField.MESSAGE_PRIMARY),
        }
    cols = [res.fname(c).decode() for c in range(res.nfields)]
    rows = []
    for r in range(res.ntuples):
        row = []
        for c in range(res.nfields):
            v = res.get_value(r, c)
            row.append(None if v is None else v.decode("utf-8", "replace"))
        rows.append(row)
    return {"ok": True, "columns": cols, "rows": rows}


def main():
    conninfo, root = sys.argv[1], sys.argv[2]
    files = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith(".sql") and n != "upstream-extra.sql":
                files.append(os.path.join(dirpath, n))
    files.sort()
    for path in files:
        name = os.path.relpath(path, root)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for label, params, sql in parse_file(path):
                result = run(conn, sql, params)
                result["fixture"] = name
                result["statement"] = label
                print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
