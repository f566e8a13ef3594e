// node-postgres through the gateway, compared with a direct connection.
// Usage: node node_pg.js GATEWAY_URL DIRECT_URL (NODE_PATH names the
// node_modules that scripts/install-client-matrix filled).
// Prints `ok <check>` per check; any failure exits non-zero.
const { Client } = require('pg');
const assert = require('assert');

const CUSTOMERS = 'SELECT id, name, email FROM customers ORDER BY id';

function ok(check, values) {
  console.log('ok', check, values === undefined ? '' : JSON.stringify(values));
}

async function main() {
  const [gwUrl, directUrl] = process.argv.slice(2);
  const d = new Client({ connectionString: directUrl });
  const c = new Client({ connectionString: gwUrl });
  await d.connect();
  await c.connect();

  const want = (await d.query(CUSTOMERS)).rows;
  const got = (await c.query(CUSTOMERS)).rows;
  assert.strictEqual(got.length, want.length);
  got.forEach((g, i) => {
    assert.strictEqual(g.id, want[i].id);
    assert.strictEqual(g.name, want[i].name);
    assert.strictEqual(g.email, '[email]');
  });
  ok('node-postgres simple', got.slice(0, 2));

  const p = await c.query('SELECT id, email FROM customers WHERE id = $1', [5]);
  assert.deepStrictEqual(p.rows, [{ id: '5', email: '[email]' }]);
  ok('node-postgres parameterised', p.rows);

  for (let i = 1; i <= 6; i++) {
    const r = await c.query({ name: 'by-id', text: 'SELECT id, email FROM customers WHERE id = $1', values: [i] });
    assert.strictEqual(r.rows[0].email, '[email]');
  }
  ok('node-postgres named prepared');

  const b = await c.query({ text: 'SELECT id, amount_cents FROM orders ORDER BY id LIMIT 3', binary: true });
  const bd = await d.query({ text: 'SELECT id, amount_cents FROM orders ORDER BY id LIMIT 3', binary: true });
  assert.deepStrictEqual(b.rows, bd.rows);
  ok('node-postgres binary rows', b.rows);

  await assert.rejects(
    c.query('UPDATE customers SET name = $1 WHERE id = 1', ['x']),
    (e) => e.code === '42501' && /write/.test(e.message),
  );
  await assert.rejects(
    c.query("SELECT set_config('app.tenant', $1, false)", ['7']),
    (e) => e.code === '42501' && /function:set_config/.test(e.message),
  );
  assert.strictEqual((await c.query("SELECT 'usable' AS v")).rows[0].v, 'usable');
  ok('node-postgres refusals in extended mode');

  await c.end();
  await d.end();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
