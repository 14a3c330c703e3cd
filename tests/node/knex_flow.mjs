// Knex 3 + mysql2 against a MySQL-compatible server (embedb, or MySQL/MariaDB as a reference).
//
//   EMBEDB_HOST (127.0.0.1), EMBEDB_PORT (4000), EMBEDB_DATABASE (knex_test): where to connect,
//   as root with an empty password. The database must exist; the flow leaves it empty.
//   EMBEDB_SQL_LOG=1 prints every statement Knex sends ("  SQL ..." lines, bindings after "--").
//
// Covers the schema builder (createTable with increments / string / text / integer / boolean /
// decimal / timestamps, foreign keys, indexes, unique), migrations (migrate.latest / rollback /
// list with an in-memory migration source, which also takes the knex_migrations_lock row FOR
// UPDATE), alterTable (add column, .alter() to change type / nullability / default, renameColumn,
// dropColumn), CRUD, joins and aggregates, and transactions (commit, rollback, nested through
// SAVEPOINT).
//
// Prints one line per step, "PASS name" or "FAIL name: error [sql: ...]", and exits 1 if any step
// failed. The steps run in order and share state; a failure does not stop the later steps.

import assert from 'node:assert/strict';
import knexFactory from 'knex';
import { stepper } from './steps.mjs';

const host = process.env.EMBEDB_HOST || '127.0.0.1';
const port = Number(process.env.EMBEDB_PORT || 4000);
const database = process.env.EMBEDB_DATABASE || 'knex_test';
const logSql = ['1', 'true', 'yes'].includes((process.env.EMBEDB_SQL_LOG || '').toLowerCase());

const knex = knexFactory({
  client: 'mysql2',
  connection: { host, port, user: 'root', password: '', database, connectTimeout: 10000 },
  pool: { min: 0, max: 3 },
  acquireConnectionTimeout: 30000,
});
if (logSql) {
  knex.on('query', (q) => {
    const b = q.bindings && q.bindings.length ? ` -- ${JSON.stringify(q.bindings)}` : '';
    console.log(`  SQL ${q.sql}${b}`);
  });
}

// --- harness -------------------------------------------------------------------------------------
const STEP_TIMEOUT_MS = 60000;

function describeError(e) {
  // knex puts the statement in front of the server's message ("<sql> - <message>")
  let s = `${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : String(e)}`;
  if (e && (e.code || e.errno)) s += ` [code=${e.code} errno=${e.errno} sqlState=${e.sqlState}]`;
  return s.replace(/\s*\n\s*/g, ' ');
}

const { step, finish } = stepper(describeError, { logSql, timeoutMs: STEP_TIMEOUT_MS });

const sorted = (xs) => [...xs].sort();
const num = (v) => Number(v);
// MariaDB reports a string default quoted ('DE') in information_schema, MySQL as it is (DE)
const dflt = (v) => (typeof v === 'string' ? v.replace(/^'(.*)'$/, '$1') : v);

// the in-memory migration source: 001 creates `tags` and `book_tags`, 002 adds a column to `tags`
const migrations = {
  '001_tags': {
    async up(k) {
      await k.schema.createTable('tags', (t) => {
        t.increments('id');
        t.string('label', 32).notNullable().unique();
      });
      await k.schema.createTable('book_tags', (t) => {
        t.integer('book_id').unsigned().notNullable().references('id').inTable('books').onDelete('CASCADE');
        t.integer('tag_id').unsigned().notNullable().references('id').inTable('tags').onDelete('CASCADE');
        t.primary(['book_id', 'tag_id']);
      });
    },
    async down(k) {
      await k.schema.dropTable('book_tags');
      await k.schema.dropTable('tags');
    },
  },
  '002_tag_color': {
    async up(k) {
      await k.schema.alterTable('tags', (t) => {
        t.string('color', 16).notNullable().defaultTo('grey');
      });
    },
    async down(k) {
      await k.schema.alterTable('tags', (t) => {
        t.dropColumn('color');
      });
    },
  },
};
const migrationSource = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (m) => m,
  getMigration: async (m) => migrations[m],
};
const migrateConfig = { migrationSource, tableName: 'knex_migrations' };

// --- the flow ------------------------------------------------------------------------------------
const ids = {};

await step('connect', async () => {
  const [rows] = await knex.raw('SELECT 1 + 1 AS two');
  assert.equal(num(rows[0].two), 2);
});

await step('createTable', async () => {
  await knex.schema.dropTableIfExists('books');
  await knex.schema.dropTableIfExists('authors');
  await knex.schema.createTable('authors', (t) => {
    t.increments('id');
    t.string('name', 100).notNullable();
    t.string('email', 128).notNullable().unique();
    t.boolean('active').notNullable().defaultTo(true);
    t.integer('born');
    t.string('legacy', 16);
    t.timestamps(true, true);
  });
  await knex.schema.createTable('books', (t) => {
    t.increments('id');
    t.string('title', 200).notNullable();
    t.text('summary');
    t.integer('pages').notNullable().defaultTo(0);
    t.decimal('price', 8, 2);
    t.integer('author_id').unsigned().notNullable();
    t.foreign('author_id').references('authors.id').onDelete('CASCADE');
    t.index(['title'], 'books_title_idx');
    t.unique(['author_id', 'title']);
    t.timestamps(true, true);
  });
  assert.equal(await knex.schema.hasTable('authors'), true);
  assert.equal(await knex.schema.hasTable('books'), true);
  assert.equal(await knex.schema.hasTable('nope'), false);
  assert.equal(await knex.schema.hasColumn('books', 'summary'), true);
  assert.equal(await knex.schema.hasColumn('books', 'nope'), false);
});

await step('columnInfo', async () => {
  const info = await knex('authors').columnInfo();
  assert.deepEqual(sorted(Object.keys(info)),
    sorted(['id', 'name', 'email', 'active', 'born', 'legacy', 'created_at', 'updated_at']));
  assert.equal(info.name.type, 'varchar');
  assert.equal(info.name.maxLength, 100);
  assert.equal(info.name.nullable, false);
  assert.equal(info.born.type, 'int');
  assert.equal(info.born.nullable, true);
  assert.equal(info.active.type, 'tinyint');
  assert.equal(String(info.active.defaultValue), '1');
  const title = await knex('books').columnInfo('title');
  assert.equal(title.maxLength, 200);
});

await step('indexes and foreign keys exist', async () => {
  const idx = await knex('information_schema.statistics')
    .select({ name: 'index_name', nonUnique: 'non_unique', col: 'column_name', seq: 'seq_in_index' })
    .where({ table_schema: database, table_name: 'books' })
    .orderBy(['index_name', 'seq_in_index']);
  const byName = {};
  for (const r of idx) (byName[r.name] ||= { unique: num(r.nonUnique) === 0, cols: [] }).cols.push(r.col);
  assert.deepEqual(byName.PRIMARY, { unique: true, cols: ['id'] });
  assert.deepEqual(byName.books_title_idx, { unique: false, cols: ['title'] });
  assert.deepEqual(byName.books_author_id_title_unique, { unique: true, cols: ['author_id', 'title'] });
  const fks = await knex('information_schema.key_column_usage')
    .select('constraint_name as name', 'column_name as col', 'referenced_table_name as rt', 'referenced_column_name as rc')
    .where({ table_schema: database, table_name: 'books' })
    .whereNotNull('referenced_table_name');
  assert.deepEqual(fks.map((r) => [r.name, r.col, r.rt, r.rc]), [['books_author_id_foreign', 'author_id', 'authors', 'id']]);
});

await step('insert / first / select', async () => {
  const [annId] = await knex('authors').insert({ name: 'Ann', email: 'ann@example.com', born: 1970 });
  assert.ok(annId > 0);
  ids.Ann = annId;
  await knex('authors').insert([
    { name: 'Ben', email: 'ben@example.com', born: 1980, active: false },
    { name: 'Cat', email: 'cat@example.com' },
  ]);
  const all = await knex('authors').select('id', 'name', 'active', 'born').orderBy('id');
  assert.deepEqual(all.map((r) => [r.name, num(r.active), r.born]), [['Ann', 1, 1970], ['Ben', 0, 1980], ['Cat', 1, null]]);
  for (const r of all) ids[r.name] = r.id;
  const ann = await knex('authors').where({ email: 'ann@example.com' }).first();
  assert.equal(ann.id, ids.Ann);
  assert.ok(ann.created_at instanceof Date, 'created_at defaulted to CURRENT_TIMESTAMP');
  assert.equal(await knex('authors').where('email', 'zed@example.com').first(), undefined);
  await knex('books').insert([
    { title: 'Alpha', pages: 100, price: '9.99', author_id: ids.Ann, summary: 'first' },
    { title: 'Beta', pages: 250, price: '19.50', author_id: ids.Ann },
    { title: 'Gamma', pages: 80, author_id: ids.Ben },
    { title: 'Delta', author_id: ids.Cat, summary: "it's \"quoted\"\nand multi-line" },
  ]);
  const delta = await knex('books').where('title', 'Delta').first('pages', 'price', 'summary');
  assert.deepEqual({ ...delta }, { pages: 0, price: null, summary: "it's \"quoted\"\nand multi-line" });
});

await step('where / whereIn / orderBy / limit / offset / count', async () => {
  const big = await knex('books').where('pages', '>', 90).orderBy('pages', 'desc').pluck('title');
  assert.deepEqual(big, ['Beta', 'Alpha']);
  const some = await knex('books').whereIn('title', ['Gamma', 'Alpha', 'Nope']).orderBy('title').pluck('title');
  assert.deepEqual(some, ['Alpha', 'Gamma']);
  const page = await knex('books').orderBy([{ column: 'pages', order: 'desc' }, 'id']).limit(2).offset(1).pluck('title');
  assert.deepEqual(page, ['Alpha', 'Gamma']);
  const [{ n }] = await knex('books').count({ n: '*' });
  assert.equal(num(n), 4);
  const nulls = await knex('books').whereNull('price').orWhere('title', 'like', 'A%').orderBy('id').pluck('title');
  assert.deepEqual(nulls, ['Alpha', 'Gamma', 'Delta']);
  const between = await knex('books').whereBetween('pages', [80, 100]).whereNot('title', 'Gamma').pluck('title');
  assert.deepEqual(between, ['Alpha']);
});

await step('update / increment / delete', async () => {
  const n = await knex('books').where({ title: 'Gamma' }).update({ price: '5.00', summary: 'cheap' });
  assert.equal(n, 1);
  assert.equal(await knex('books').where({ title: 'Nope' }).update({ price: '1.00' }), 0);
  await knex('books').where({ title: 'Gamma' }).increment('pages', 20);
  await knex('books').where({ title: 'Gamma' }).decrement({ pages: 5 });
  const g = await knex('books').where({ title: 'Gamma' }).first();
  assert.equal(g.pages, 95);
  assert.equal(g.price, '5.00');
  await knex('authors').insert({ name: 'Dan', email: 'dan@example.com' });
  assert.equal(await knex('authors').where({ name: 'Dan' }).del(), 1);
  assert.equal(num((await knex('authors').count({ n: 'id' }))[0].n), 3);
});

await step('upsert (onConflict merge / ignore)', async () => {
  await knex('authors').insert({ name: 'Ann B.', email: 'ann@example.com' }).onConflict('email').merge(['name']);
  assert.equal((await knex('authors').where({ id: ids.Ann }).first()).name, 'Ann B.');
  await knex('authors').insert({ name: 'Ignored', email: 'ben@example.com' }).onConflict('email').ignore();
  assert.equal((await knex('authors').where({ id: ids.Ben }).first()).name, 'Ben');
  assert.equal(num((await knex('authors').count({ n: '*' }))[0].n), 3);
});

await step('unique violation error', async () => {
  await assert.rejects(knex('authors').insert({ name: 'X', email: 'cat@example.com' }),
    (e) => e.code === 'ER_DUP_ENTRY' && e.errno === 1062);
  await assert.rejects(knex('books').insert({ title: 'Orphan', author_id: 999999 }),
    (e) => e.code === 'ER_NO_REFERENCED_ROW_2' && e.errno === 1452);
});

await step('join / leftJoin / groupBy / having', async () => {
  const rows = await knex('books as b')
    .join('authors as a', 'a.id', 'b.author_id')
    .select('a.name as author', 'b.title')
    .where('a.active', true)
    .orderBy(['a.name', 'b.title']);
  assert.deepEqual(rows.map((r) => [r.author, r.title]), [['Ann B.', 'Alpha'], ['Ann B.', 'Beta'], ['Cat', 'Delta']]);
  const counts = await knex('authors as a')
    .leftJoin('books as b', 'b.author_id', 'a.id')
    .select('a.name')
    .count({ n: 'b.id' })
    .sum({ pages: 'b.pages' })
    .groupBy('a.id', 'a.name')
    .orderBy('a.name');
  assert.deepEqual(counts.map((r) => [r.name, num(r.n), num(r.pages)]), [['Ann B.', 2, 350], ['Ben', 1, 95], ['Cat', 1, 0]]);
  const prolific = await knex('books').select('author_id').count({ n: '*' }).groupBy('author_id')
    .having(knex.raw('count(*) > ?', [1]));
  assert.deepEqual(prolific.map((r) => [r.author_id, num(r.n)]), [[ids.Ann, 2]]);
  const sub = await knex('authors').whereIn('id', knex('books').select('author_id').where('pages', '>', 200)).pluck('name');
  assert.deepEqual(sub, ['Ann B.']);
});

await step('migrate.latest', async () => {
  const [batch, log] = await knex.migrate.latest(migrateConfig);
  assert.equal(batch, 1);
  assert.deepEqual(log, ['001_tags', '002_tag_color']);
  assert.equal(await knex.schema.hasTable('knex_migrations'), true);
  assert.equal(await knex.schema.hasTable('knex_migrations_lock'), true);
  assert.equal(await knex.schema.hasColumn('tags', 'color'), true);
  assert.equal(await knex.migrate.currentVersion(migrateConfig), '002');
  const [done, pending] = await knex.migrate.list(migrateConfig);
  assert.deepEqual(done.map((m) => m.name), ['001_tags', '002_tag_color']);
  assert.deepEqual(pending, []);
  // nothing left to run: a second latest is a no-op
  const [batch2, log2] = await knex.migrate.latest(migrateConfig);
  assert.deepEqual([batch2, log2], [1, []]);
});

await step('migrated tables usable', async () => {
  const [t1] = await knex('tags').insert({ label: 'sf' });
  const [t2] = await knex('tags').insert({ label: 'classic', color: 'gold' });
  await knex('book_tags').insert([
    { book_id: (await knex('books').where({ title: 'Alpha' }).first()).id, tag_id: t1 },
    { book_id: (await knex('books').where({ title: 'Beta' }).first()).id, tag_id: t1 },
    { book_id: (await knex('books').where({ title: 'Beta' }).first()).id, tag_id: t2 },
  ]);
  const rows = await knex('tags as t')
    .join('book_tags as bt', 'bt.tag_id', 't.id')
    .join('books as b', 'b.id', 'bt.book_id')
    .select('t.label', 't.color', knex.raw('GROUP_CONCAT(b.title ORDER BY b.title) as titles'))
    .groupBy('t.id', 't.label', 't.color')
    .orderBy('t.label');
  assert.deepEqual(rows.map((r) => [r.label, r.color, r.titles]), [['classic', 'gold', 'Beta'], ['sf', 'grey', 'Alpha,Beta']]);
});

await step('migrate.rollback', async () => {
  const [batch, log] = await knex.migrate.rollback(migrateConfig);
  assert.equal(batch, 1);
  assert.deepEqual(sorted(log), ['001_tags', '002_tag_color']);
  assert.equal(await knex.schema.hasTable('tags'), false);
  assert.equal(await knex.schema.hasTable('book_tags'), false);
  const [done, pending] = await knex.migrate.list(migrateConfig);
  assert.deepEqual(done, []);
  assert.equal(pending.length, 2);
  // up / down one at a time
  await knex.migrate.up(migrateConfig);
  assert.equal(await knex.schema.hasTable('tags'), true);
  assert.equal(await knex.schema.hasColumn('tags', 'color'), false);
  await knex.migrate.up(migrateConfig);
  assert.equal(await knex.schema.hasColumn('tags', 'color'), true);
  await knex.migrate.down(migrateConfig);
  assert.equal(await knex.schema.hasColumn('tags', 'color'), false);
  await knex.migrate.rollback(migrateConfig, true);
  assert.equal(await knex.schema.hasTable('tags'), false);
  const [{ n }] = await knex('knex_migrations').count({ n: '*' });
  assert.equal(num(n), 0);
});

await step('alterTable add column', async () => {
  await knex.schema.alterTable('authors', (t) => {
    t.string('country', 2).notNullable().defaultTo('DE');
    t.text('bio');
    t.index(['country'], 'authors_country_idx');
  });
  const info = await knex('authors').columnInfo();
  assert.ok(info.country && info.bio);
  assert.equal(dflt(info.country.defaultValue), 'DE');
  const rows = await knex('authors').orderBy('id').pluck('country');
  assert.deepEqual(rows, ['DE', 'DE', 'DE']);
});

await step('alterTable .alter() type / nullability / default', async () => {
  await knex('authors').whereNull('born').update({ born: 1990 }); // no NULLs left for NOT NULL
  await knex.schema.alterTable('authors', (t) => {
    t.bigInteger('born').notNullable().defaultTo(1900).alter(); // int NULL -> bigint NOT NULL DEFAULT 1900
    t.string('name', 150).nullable().alter(); // varchar(100) NOT NULL -> varchar(150) NULL
    t.string('country', 2).notNullable().defaultTo('US').alter(); // new default
  });
  const info = await knex('authors').columnInfo();
  assert.equal(info.born.type, 'bigint');
  assert.equal(info.born.nullable, false);
  assert.equal(String(info.born.defaultValue), '1900');
  assert.equal(info.name.maxLength, 150);
  assert.equal(info.name.nullable, true);
  assert.equal(dflt(info.country.defaultValue), 'US');
  await knex('authors').insert({ email: 'eve@example.com' });
  const eve = await knex('authors').where({ email: 'eve@example.com' }).first();
  assert.deepEqual([eve.name, num(eve.born), eve.country], [null, 1900, 'US']);
  await knex('authors').where({ id: eve.id }).update({ born: 5000000000 });
  assert.equal(num((await knex('authors').where({ id: eve.id }).first()).born), 5000000000);
});

await step('alterTable setNullable / dropNullable / drop default', async () => {
  await knex.schema.alterTable('books', (t) => {
    t.setNullable('pages');
  });
  assert.equal((await knex('books').columnInfo('pages')).nullable, true);
  await knex('books').where({ title: 'Delta' }).update({ pages: null });
  await knex('books').whereNull('pages').update({ pages: 1 });
  await knex.schema.alterTable('books', (t) => {
    t.dropNullable('pages');
  });
  assert.equal((await knex('books').columnInfo('pages')).nullable, false);
  await knex.schema.alterTable('authors', (t) => {
    t.string('country', 2).notNullable().alter(); // no .defaultTo(): MODIFY without DEFAULT drops it
  });
  assert.equal((await knex('authors').columnInfo('country')).defaultValue, null);
});

await step('renameColumn', async () => {
  await knex.schema.alterTable('books', (t) => {
    t.renameColumn('summary', 'blurb');
  });
  const info = await knex('books').columnInfo();
  assert.ok(info.blurb && !info.summary);
  assert.equal(info.blurb.type, 'text');
  assert.equal((await knex('books').where({ title: 'Alpha' }).first()).blurb, 'first');
  // a renamed column that other constraints reference keeps them (FK column)
  await knex.schema.alterTable('books', (t) => {
    t.renameColumn('author_id', 'writer_id');
  });
  const joined = await knex('books as b').join('authors as a', 'a.id', 'b.writer_id').where('b.title', 'Gamma').first('a.name');
  assert.equal(joined.name, 'Ben');
  await assert.rejects(knex('books').insert({ title: 'Orphan', writer_id: 999999 }),
    (e) => e.errno === 1452, 'FK still enforced after rename');
});

await step('dropColumn / dropIndex / dropForeign / dropUnique', async () => {
  await knex.schema.alterTable('authors', (t) => {
    t.dropIndex(['country'], 'authors_country_idx');
    t.dropColumn('legacy');
    t.dropColumns('bio');
  });
  const info = await knex('authors').columnInfo();
  assert.ok(!info.legacy && !info.bio && info.country);
  await knex.schema.alterTable('books', (t) => {
    t.dropForeign(['writer_id'], 'books_author_id_foreign');
    t.dropUnique(['writer_id', 'title'], 'books_author_id_title_unique');
    t.dropIndex(['title'], 'books_title_idx');
  });
  const idx = await knex('information_schema.statistics').distinct('index_name as name')
    .where({ table_schema: database, table_name: 'books' });
  assert.deepEqual(idx.map((r) => r.name).filter((n) => n !== 'books_author_id_foreign'), ['PRIMARY']);
  await knex('books').insert({ title: 'Orphan', writer_id: 999999 }); // FK gone
  await knex('books').where({ title: 'Orphan' }).del();
});

await step('transaction commit', async () => {
  const id = await knex.transaction(async (trx) => {
    const [newId] = await trx('authors').insert({ name: 'Fay', email: 'fay@example.com', country: 'FR' });
    await trx('books').insert({ title: 'Epsilon', writer_id: newId, pages: 10 });
    return newId;
  });
  assert.equal((await knex('books').where({ title: 'Epsilon' }).first()).writer_id, id);
  ids.Fay = id;
});

await step('transaction rollback', async () => {
  await assert.rejects(knex.transaction(async (trx) => {
    await trx('authors').where({ id: ids.Fay }).update({ name: 'Changed' });
    await trx('books').where({ title: 'Epsilon' }).del();
    assert.equal(await trx('books').where({ title: 'Epsilon' }).first(), undefined);
    throw new Error('boom');
  }), /boom/);
  assert.equal((await knex('authors').where({ id: ids.Fay }).first()).name, 'Fay');
  assert.ok(await knex('books').where({ title: 'Epsilon' }).first());
  // the unmanaged form
  const trx = await knex.transaction();
  await trx('authors').where({ id: ids.Fay }).update({ name: 'Changed' });
  await trx.rollback();
  assert.equal((await knex('authors').where({ id: ids.Fay }).first()).name, 'Fay');
});

await step('nested transaction (savepoint)', async () => {
  await knex.transaction(async (trx) => {
    await trx('authors').where({ id: ids.Fay }).update({ born: 1111 });
    await assert.rejects(trx.transaction(async (inner) => {
      await inner('authors').where({ id: ids.Fay }).update({ born: 2222 });
      await inner('books').insert({ title: 'Zeta', writer_id: ids.Fay });
      assert.equal(num((await inner('authors').where({ id: ids.Fay }).first()).born), 2222);
      throw new Error('inner failure');
    }), /inner failure/);
    // ROLLBACK TO SAVEPOINT undid the inner writes only
    assert.equal(num((await trx('authors').where({ id: ids.Fay }).first()).born), 1111);
    assert.equal(await trx('books').where({ title: 'Zeta' }).first(), undefined);
    await trx.transaction(async (inner2) => {
      await inner2('books').insert({ title: 'Eta', writer_id: ids.Fay });
      await inner2.transaction(async (inner3) => {
        await inner3('books').where({ title: 'Eta' }).update({ pages: 33 });
      });
    });
  });
  assert.equal(num((await knex('authors').where({ id: ids.Fay }).first()).born), 1111);
  const eta = await knex('books').where({ title: 'Eta' }).first();
  assert.equal(eta.pages, 33);
  assert.equal(await knex('books').where({ title: 'Zeta' }).first(), undefined);
});

await step('transaction isolation level + forUpdate', async () => {
  const trx = await knex.transaction({ isolationLevel: 'read committed' });
  try {
    const row = await trx('authors').where({ id: ids.Fay }).forUpdate().first();
    assert.equal(row.name, 'Fay');
    await trx('authors').where({ id: ids.Fay }).update({ name: 'Fay 2' });
    await trx.commit();
  } finally {
    if (!trx.isCompleted()) await trx.rollback();
  }
  assert.equal((await knex('authors').where({ id: ids.Fay }).first()).name, 'Fay 2');
});

await step('dropTable', async () => {
  await knex.schema.dropTable('books');
  await knex.schema.dropTableIfExists('authors');
  await knex.schema.dropTableIfExists('knex_migrations');
  await knex.schema.dropTableIfExists('knex_migrations_lock');
  const [rows] = await knex.raw('SHOW TABLES');
  assert.deepEqual(rows, []);
});

await Promise.race([knex.destroy().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000))]);
finish();
