"""Python drivers through the gateway: psycopg 3, psycopg2, asyncpg and
SQLAlchemy's inspector, each compared with a direct connection.

Usage: drivers.py DRIVER GATEWAY_CONNINFO DIRECT_CONNINFO GATEWAY_URL DIRECT_URL

Prints `ok <check>` per passed check and the values it fetched (the Rust
test checks that no raw sensitive value is among them); any failure raises,
so the process exits non-zero with the traceback.
"""

import asyncio
import csv
import io
import sys

CUSTOMERS = "SELECT id, name, email FROM customers ORDER BY id"


def ok(check, values=None):
    print("ok", check, "" if values is None else repr(values), flush=True)


def same_except_email(direct, gateway):
    assert len(direct) == len(gateway) > 0, (len(direct), len(gateway))
    for d, g in zip(direct, gateway):
        assert tuple(d[:2]) == tuple(g[:2]), (d, g)
        assert g[2] == "[email]", g


def psycopg3(gw, direct):
    import psycopg
    from psycopg import errors

    with psycopg.connect(direct) as d:
        want = d.execute(CUSTOMERS).fetchall()
    with psycopg.connect(gw) as c:
        got = c.execute(CUSTOMERS).fetchall()
        same_except_email(want, got)
        ok("psycopg3 text", got[:2])

        got = c.cursor(binary=True).execute(CUSTOMERS).fetchall()
        same_except_email(want, got)
        assert isinstance(got[0][0], int)
        ok("psycopg3 binary", got[:2])

        rows = c.execute("SELECT id, email FROM customers WHERE id = %s", (3,), prepare=True).fetchall()
        for i in range(6):
            rows = c.execute("SELECT id, email FROM customers WHERE id = %s", (3 + i,), prepare=True).fetchall()
        assert rows == [(8, "[email]")], rows
        ok("psycopg3 prepared", rows)

        with c.transaction():
            with c.cursor(name="matrix_cursor") as cur:
                cur.itersize = 7
                cur.execute(CUSTOMERS)
                got = list(cur)
        same_except_email(want, got)
        ok("psycopg3 server-side cursor", got[:2])

        with c.cursor() as cur:
            with cur.copy("COPY (SELECT id, email FROM customers ORDER BY id) TO STDOUT") as copy:
                copied = [row for row in copy.rows()]
        assert len(copied) == len(want) and all(r[1] == "[email]" for r in copied), copied[:3]
        ok("psycopg3 copy to stdout", copied[:2])

        assert c.execute("SELECT set_config('jit', %s, false)", ("off",)).fetchone() == ("off",)
        ok("psycopg3 set_config of a built-in setting")

        # Pipeline mode: results in order, a refusal reported where it
        # happened without hanging, the connection usable after.
        with c.pipeline():
            a = c.execute("SELECT 1")
            b = c.execute("SELECT email FROM customers WHERE id = %s", (1,))
            assert a.fetchone() == (1,)
            assert b.fetchone() == ("[email]",)
        ok("psycopg3 pipeline")
        try:
            with c.pipeline():
                first = c.execute("SELECT 'first'")
                c.execute("UPDATE customers SET name = 'x' WHERE id = 1")
                # A fetch before the pipeline's sync: psycopg sends a flush.
                assert first.fetchone() == ("first",)
                c.execute("SELECT 'after'")
            raise AssertionError("the UPDATE was not refused")
        except errors.InsufficientPrivilege as e:
            assert "write" in str(e), str(e)
        # As with any error inside a transaction, the server aborted it.
        assert c.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        c.rollback()
        assert c.execute("SELECT 'usable'").fetchone() == ("usable",)
        ok("psycopg3 pipeline with a refused statement")


def psycopg2_(gw, direct):
    import psycopg2
    import psycopg2.extras

    d = psycopg2.connect(direct)
    c = psycopg2.connect(gw)
    with d.cursor() as cur:
        cur.execute(CUSTOMERS)
        want = cur.fetchall()
    with c.cursor() as cur:
        cur.execute(CUSTOMERS)
        got = cur.fetchall()
    same_except_email(want, got)
    ok("psycopg2 select", got[:2])

    with c.cursor() as cur:
        cur.execute("SELECT id, email FROM customers WHERE id = %s", (4,))
        assert cur.fetchall() == [(4, "[email]")]
    ok("psycopg2 parameters")

    with c.cursor(name="named") as cur:
        cur.itersize = 9
        cur.execute(CUSTOMERS)
        got = cur.fetchall()
    c.commit()
    same_except_email(want, got)
    ok("psycopg2 named cursor", got[:2])

    buf = io.StringIO()
    with c.cursor() as cur:
        cur.copy_expert("COPY (SELECT id, email, phone FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv)", buf)
    lines = buf.getvalue().splitlines()
    parsed = list(csv.reader(lines))
    assert len(parsed) == len(want) and all(r[1:] == ["[email]", "[phone]"] for r in parsed), lines[:3]
    ok("psycopg2 copy_expert csv", lines[:2])

    with c.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
        cur.execute("SELECT id, email FROM customers WHERE id = 1")
        assert cur.fetchone() == {"id": 1, "email": "[email]"}
    ok("psycopg2 RealDictCursor")
    c.close()
    d.close()


def asyncpg_(gw_url, direct_url):
    import asyncpg

    async def main():
        d = await asyncpg.connect(direct_url)
        c = await asyncpg.connect(gw_url)
        want = await d.fetch(CUSTOMERS)
        got = await c.fetch(CUSTOMERS)
        same_except_email([tuple(r) for r in want], [tuple(r) for r in got])
        ok("asyncpg fetch (binary)", [tuple(r) for r in got[:2]])

        stmt = await c.prepare("SELECT id, email FROM customers WHERE id = $1")
        rows = [tuple(await stmt.fetchrow(i)) for i in range(1, 8)]
        assert rows[6] == (7, "[email]"), rows
        ok("asyncpg prepared", rows[:2])

        buf = io.BytesIO()
        await c.copy_from_query("SELECT id, email FROM customers ORDER BY id", output=buf, format="csv")
        lines = buf.getvalue().decode().splitlines()
        parsed = list(csv.reader(lines))
        assert len(parsed) == len(want) and all(r[1] == "[email]" for r in parsed), lines[:3]
        ok("asyncpg copy_from_query", lines[:2])

        # A type without a cached codec: asyncpg turns JIT off with
        # set_config, introspects the type, and restores JIT.
        r = await c.fetchval("SELECT $1::int4range", asyncpg.Range(1, 5))
        assert r == asyncpg.Range(1, 5), r
        arr = await c.fetchval("SELECT array_agg(id ORDER BY id) FROM customers WHERE id < 4")
        assert arr == [1, 2, 3], arr
        ok("asyncpg type introspection")

        # A refused statement through the extended protocol: asyncpg sends
        # Parse/Describe/Flush and waits.
        try:
            await asyncio.wait_for(c.fetch("UPDATE customers SET name = 'x' WHERE id = 1 RETURNING id"), 10)
            raise AssertionError("the UPDATE was not refused")
        except asyncpg.exceptions.InsufficientPrivilegeError as e:
            assert "write" in str(e), str(e)
        assert await asyncio.wait_for(c.fetchval("SELECT 'usable'"), 10) == "usable"
        ok("asyncpg refusal answered, connection usable")
        await c.close()
        await d.close()

    asyncio.run(main())


def sqlalchemy_(gw_url, direct_url):
    import sqlalchemy as sa

    def inspect(url):
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        i = sa.inspect(engine)
        out = {
            "schemas": i.get_schema_names(),
            "tables": i.get_table_names(),
            "views": i.get_view_names(),
            "columns": [(c["name"], str(c["type"])) for c in i.get_columns("customers")],
            "pk": i.get_pk_constraint("orders"),
            "fks": i.get_foreign_keys("orders"),
            "indexes": i.get_indexes("orders"),
            "comment": i.get_table_comment("customers"),
            "view": i.get_view_definition("customer_orders"),
            "sequences": i.get_sequence_names(),
        }
        engine.dispose()
        return out

    want = inspect(direct_url)
    got = inspect(gw_url)
    assert want == got, (want, got)
    ok("sqlalchemy inspector", sorted(got["tables"]))


def main():
    driver, gw, direct, gw_url, direct_url = sys.argv[1:6]
    {
        "psycopg3": lambda: psycopg3(gw, direct),
        "psycopg2": lambda: psycopg2_(gw, direct),
        "asyncpg": lambda: asyncpg_(gw_url, direct_url),
        "sqlalchemy": lambda: sqlalchemy_(gw_url, direct_url),
    }[driver]()


if __name__ == "__main__":
    main()
