// TypeORM 1 (type 'mysql', mysql2 driver, EntitySchema definitions) against a MySQL-compatible
// server (embedb, or MySQL/MariaDB as a reference).
//
//   EMBEDB_HOST (127.0.0.1), EMBEDB_PORT (4000), EMBEDB_DATABASE (typeorm_test): where to connect,
//   as root with an empty password. The database must exist; the flow leaves it empty.
//   EMBEDB_SQL_LOG=1 prints every statement TypeORM sends ("  SQL ..." lines, parameters after "--").
//
// Covers synchronize: true (create tables; a second synchronize of the same schema must find
// nothing to change, which checks what information_schema reports against what TypeORM created;
// then a changed schema is synchronized: add / widen / retype / drop columns, a new index),
// repositories (save, find, findOne with where, update, delete, increment), relations (ManyToOne /
// OneToMany with eager and `relations` loading, ManyToMany with a join table), QueryBuilder (joins,
// where, orderBy, skip/take, getManyAndCount, raw aggregates, subqueries), transactions
// (dataSource.transaction commit / rollback, a QueryRunner transaction nested through SAVEPOINT) and
// migrations (runMigrations / undoLastMigration with a QueryRunner-built migration).
//
// Prints one line per step, "PASS name" or "FAIL name: error [sql: ...]", and exits 1 if any step
// failed. The steps run in order and share state; a failure does not stop the later steps.

import assert from 'node:assert/strict';
import {
  DataSource, EntitySchema, In, IsNull, LessThan, Like, MoreThan, Not, Table, TableColumn, TableIndex,
} from 'typeorm';
import { stepper } from './steps.mjs';

const host = process.env.EMBEDB_HOST || '127.0.0.1';
const port = Number(process.env.EMBEDB_PORT || 4000);
const database = process.env.EMBEDB_DATABASE || 'typeorm_test';
const logSql = ['1', 'true', 'yes'].includes((process.env.EMBEDB_SQL_LOG || '').toLowerCase());

const sqlLogger = {
  logQuery(query, parameters) {
    if (!logSql) return;
    const p = parameters && parameters.length ? ` -- ${JSON.stringify(parameters)}` : '';
    console.log(`  SQL ${query}${p}`.replace(/\s*\n\s*/g, ' '));
  },
  logQueryError(error, query) { if (logSql) console.log(`  SQL-ERROR ${error} [${query}]`.replace(/\s*\n\s*/g, ' ')); },
  logQuerySlow() {},
  logSchemaBuild(message) { if (logSql) console.log(`  SCHEMA ${message}`); },
  logMigration(message) { if (logSql) console.log(`  MIGRATION ${message}`); },
  log() {},
};

// --- entities ------------------------------------------------------------------------------------
// version 1 is created by the first synchronize; version 2 changes User and Post and is applied by
// a second DataSource's synchronize; version 3 adds a NOT NULL column without a default.
function defineEntities(version) {
  const userColumns = {
    id: { type: 'int', primary: true, generated: 'increment' },
    name: { type: 'varchar', length: 64 },
    email: { type: 'varchar', length: 128, unique: true },
    isActive: { type: 'boolean', default: true },
    balance: { type: 'decimal', precision: 10, scale: 2, default: 0 },
    role: { type: 'varchar', length: 16, default: 'member' },
    legacy: { type: 'varchar', length: 16, nullable: true },
    createdAt: { type: 'datetime', createDate: true },
    updatedAt: { type: 'datetime', updateDate: true },
  };
  const postColumns = {
    id: { type: 'int', primary: true, generated: 'increment' },
    title: { type: 'varchar', length: 200 },
    body: { type: 'text', nullable: true },
    views: { type: 'int', default: 0 },
    publishedAt: { type: 'datetime', nullable: true },
    subtitle: { type: 'varchar', length: 50, nullable: true },
  };
  const postIndices = [];
  if (version >= 2) {
    delete userColumns.legacy; // dropped column
    userColumns.nickname = { type: 'varchar', length: 40, nullable: true }; // new nullable column
    userColumns.score = { type: 'int', default: 7 }; // new NOT NULL column with a default
    // TypeORM changes a column's type or length by DROP COLUMN + ADD (the values are lost)
    postColumns.views = { type: 'bigint', default: 0 }; // INT -> BIGINT
    postColumns.subtitle = { type: 'varchar', length: 100, nullable: true }; // wider
    postColumns.body = { type: 'text', nullable: false, default: null }; // now NOT NULL
    postIndices.push({ name: 'IDX_post_title', columns: ['title'] });
  }
  if (version >= 3) {
    userColumns.level = { type: 'int' }; // NOT NULL without a default: existing rows get 0
  }
  const User = new EntitySchema({
    name: 'User',
    tableName: 'users',
    columns: userColumns,
    relations: {
      posts: { type: 'one-to-many', target: 'Post', inverseSide: 'author' },
    },
  });
  const Post = new EntitySchema({
    name: 'Post',
    tableName: 'posts',
    columns: postColumns,
    indices: postIndices,
    relations: {
      author: {
        type: 'many-to-one', target: 'User', inverseSide: 'posts', eager: true,
        joinColumn: { name: 'authorId' }, nullable: false, onDelete: 'CASCADE',
      },
      tags: {
        type: 'many-to-many', target: 'Tag', inverseSide: 'posts', cascade: ['insert'],
        joinTable: { name: 'post_tags', joinColumn: { name: 'postId' }, inverseJoinColumn: { name: 'tagId' } },
      },
    },
  });
  const Tag = new EntitySchema({
    name: 'Tag',
    tableName: 'tags',
    columns: {
      id: { type: 'int', primary: true, generated: 'increment' },
      name: { type: 'varchar', length: 32, unique: true },
    },
    relations: {
      posts: { type: 'many-to-many', target: 'Post', inverseSide: 'tags' },
    },
  });
  return [User, Post, Tag];
}

// --- migrations ----------------------------------------------------------------------------------
class CreateAuditLog1700000000001 {
  name = 'CreateAuditLog1700000000001';

  async up(qr) {
    await qr.createTable(new Table({
      name: 'audit_log',
      columns: [
        { name: 'id', type: 'int', isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
        { name: 'action', type: 'varchar', length: '32' },
        { name: 'userId', type: 'int', isNullable: true },
        { name: 'at', type: 'datetime', default: 'CURRENT_TIMESTAMP' },
      ],
      foreignKeys: [{ columnNames: ['userId'], referencedTableName: 'users', referencedColumnNames: ['id'], onDelete: 'SET NULL' }],
    }), true);
    await qr.createIndex('audit_log', new TableIndex({ name: 'IDX_audit_action', columnNames: ['action'] }));
  }

  async down(qr) {
    await qr.dropTable('audit_log', true, true, true);
  }
}

class AlterAuditLog1700000000002 {
  name = 'AlterAuditLog1700000000002';

  async up(qr) {
    await qr.addColumn('audit_log', new TableColumn({ name: 'detail', type: 'varchar', length: '255', isNullable: true }));
    await qr.renameColumn('audit_log', 'action', 'kind');
    await qr.changeColumn('audit_log', 'detail', new TableColumn({ name: 'detail', type: 'text', isNullable: true }));
    await qr.query('INSERT INTO `audit_log` (`kind`, `detail`) VALUES (?, ?)', ['migrated', 'by 1700000000002']);
  }

  async down(qr) {
    await qr.query('DELETE FROM `audit_log` WHERE `kind` = ?', ['migrated']);
    await qr.changeColumn('audit_log', 'detail', new TableColumn({ name: 'detail', type: 'varchar', length: '255', isNullable: true }));
    await qr.renameColumn('audit_log', 'kind', 'action');
    await qr.dropColumn('audit_log', 'detail');
  }
}

function makeDataSource(version, extra = {}) {
  return new DataSource({
    type: 'mysql',
    host,
    port,
    username: 'root',
    password: '',
    database,
    entities: defineEntities(version),
    migrations: [CreateAuditLog1700000000001, AlterAuditLog1700000000002],
    migrationsTableName: 'typeorm_migrations',
    logging: logSql ? 'all' : false,
    logger: sqlLogger,
    poolSize: 3,
    connectTimeout: 10000,
    ...extra,
  });
}

// --- harness -------------------------------------------------------------------------------------
const STEP_TIMEOUT_MS = 60000;

function describeError(e) {
  let s = `${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : String(e)}`;
  const d = e && e.driverError;
  if (d && (d.code || d.errno)) s += ` [code=${d.code} errno=${d.errno} sqlState=${d.sqlState}]`;
  if (e && e.query) s += ` [sql: ${e.query}]`;
  return s.replace(/\s*\n\s*/g, ' ');
}

const { step, finish } = stepper(describeError, { logSql, timeoutMs: STEP_TIMEOUT_MS });

async function destroy(ds) {
  if (ds && ds.isInitialized) {
    await Promise.race([ds.destroy().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000))]);
  }
}

// what a synchronize would still change: nothing, if information_schema reports the schema back
// the way TypeORM created it
async function pendingSchemaChanges(ds) {
  const log = await ds.driver.createSchemaBuilder().log();
  return log.upQueries.map((q) => q.query);
}

async function tableNames(ds) {
  const rows = await ds.query('SHOW TABLES');
  return rows.map((r) => Object.values(r)[0]).sort();
}

const sorted = (xs) => [...xs].sort();
const names = (xs) => xs.map((x) => x.name);

// --- the flow ------------------------------------------------------------------------------------
let ds = makeDataSource(1, { synchronize: true, dropSchema: true });
const u = {}; // users by name

await step('initialize + synchronize', async () => {
  await ds.initialize();
  assert.deepEqual(await tableNames(ds), ['post_tags', 'posts', 'tags', 'users']);
  const [row] = await ds.query('SELECT 1 + 1 AS two');
  assert.equal(Number(row.two), 2);
});

await step('synchronize again is a no-op', async () => {
  assert.deepEqual(await pendingSchemaChanges(ds), []);
});

await step('repository save / find', async () => {
  const users = ds.getRepository('User');
  const alice = await users.save({ name: 'Alice', email: 'alice@example.com', role: 'admin', balance: '100.50' });
  assert.equal(typeof alice.id, 'number');
  assert.ok(alice.createdAt instanceof Date);
  const saved = await users.save([
    { name: 'Bob', email: 'bob@example.com', balance: '20.00' },
    { name: 'Carol', email: 'carol@example.com' },
    { name: 'Dave', email: 'dave@example.com', isActive: false, role: 'guest', legacy: 'L1' },
  ]);
  assert.deepEqual(saved.map((x) => typeof x.id), ['number', 'number', 'number']);
  const all = await users.find({ order: { id: 'ASC' } });
  assert.deepEqual(names(all), ['Alice', 'Bob', 'Carol', 'Dave']);
  assert.deepEqual(all.map((x) => x.id), [alice.id, ...saved.map((x) => x.id)]);
  for (const x of all) u[x.name] = x;
  assert.equal(u.Alice.isActive, true);
  assert.equal(u.Dave.isActive, false);
  assert.equal(u.Carol.balance, '0.00');
  assert.equal(u.Carol.role, 'member');
  assert.equal(u.Dave.legacy, 'L1');
});

await step('findOne / findBy with where operators', async () => {
  const users = ds.getRepository('User');
  const bob = await users.findOne({ where: { email: 'bob@example.com' } });
  assert.equal(bob.id, u.Bob.id);
  assert.equal(await users.findOne({ where: { email: 'zed@example.com' } }), null);
  assert.equal((await users.findOneBy({ id: u.Carol.id })).name, 'Carol');
  const some = await users.find({ where: { name: In(['Bob', 'Dave', 'Nobody']), isActive: true } });
  assert.deepEqual(names(some), ['Bob']);
  const rich = await users.find({ where: { balance: MoreThan(10) }, order: { balance: 'DESC' } });
  assert.deepEqual(names(rich), ['Alice', 'Bob']);
  const or = await users.find({ where: [{ role: 'guest' }, { name: Like('A%') }], order: { name: 'ASC' } });
  assert.deepEqual(names(or), ['Alice', 'Dave']);
  const notNull = await users.find({ where: { legacy: Not(IsNull()) } });
  assert.deepEqual(names(notNull), ['Dave']);
  const paged = await users.find({ order: { id: 'ASC' }, skip: 1, take: 2, select: { id: true, name: true } });
  assert.deepEqual(names(paged), ['Bob', 'Carol']);
  assert.equal(paged[0].email, undefined);
  assert.equal(await users.count(), 4);
  assert.equal(await users.countBy({ isActive: false }), 1);
  assert.equal(await users.existsBy({ name: 'Carol' }), true);
});

await step('update / increment / delete', async () => {
  const users = ds.getRepository('User');
  const r = await users.update({ name: 'Dave' }, { isActive: true, balance: '5.25' });
  assert.equal(r.affected, 1);
  const none = await users.update({ name: 'Nobody' }, { isActive: true });
  assert.equal(none.affected, 0);
  await users.increment({ name: 'Bob' }, 'balance', 2.5);
  assert.equal((await users.findOneBy({ name: 'Bob' })).balance, '22.50');
  const carol = await users.findOneBy({ id: u.Carol.id });
  carol.name = "Carol O'Brien";
  const before = carol.updatedAt;
  await users.save(carol); // sets `updatedAt` = CURRENT_TIMESTAMP (whole seconds)
  const back = await users.findOneBy({ id: u.Carol.id });
  assert.equal(back.name, "Carol O'Brien");
  assert.ok(Math.floor(back.updatedAt.getTime() / 1000) >= Math.floor(before.getTime() / 1000));
  const eve = await users.save({ name: 'Eve', email: 'eve@example.com' });
  const d = await users.delete({ id: eve.id });
  assert.equal(d.affected, 1);
  assert.equal(await users.findOneBy({ id: eve.id }), null);
  const frank = await users.save({ name: 'Frank', email: 'frank@example.com' });
  await users.remove(frank);
  assert.equal(await users.count(), 4);
});

await step('ON UPDATE CURRENT_TIMESTAMP(6) on a raw UPDATE', async () => {
  // TypeORM's updateDate column is `datetime(6) ... ON UPDATE CURRENT_TIMESTAMP(6)`; an UPDATE
  // that does not set it must move it
  const [before] = await ds.query('SELECT `updatedAt` FROM `users` WHERE `id` = ?', [u.Dave.id]);
  await new Promise((resolve) => setTimeout(resolve, 20));
  await ds.query('UPDATE `users` SET `role` = ? WHERE `id` = ?', ['moved', u.Dave.id]);
  const [after] = await ds.query('SELECT `updatedAt` FROM `users` WHERE `id` = ?', [u.Dave.id]);
  await ds.query('UPDATE `users` SET `role` = ? WHERE `id` = ?', ['guest', u.Dave.id]);
  assert.ok(after.updatedAt.getTime() > before.updatedAt.getTime(),
    `updatedAt moved: ${before.updatedAt.toISOString()} -> ${after.updatedAt.toISOString()}`);
});

await step('unique violation error', async () => {
  await assert.rejects(ds.getRepository('User').insert({ name: 'X', email: 'alice@example.com' }),
    (e) => e.name === 'QueryFailedError' && e.driverError.errno === 1062);
});

await step('relations save (ManyToOne / ManyToMany cascade)', async () => {
  const posts = ds.getRepository('Post');
  const tags = ds.getRepository('Tag');
  const [tSql, tOrm] = await tags.save([{ name: 'sql' }, { name: 'orm' }]);
  await posts.save({ title: 'Hello', body: 'first post', author: u.Alice, tags: [tSql, tOrm], views: 10 });
  await posts.save({ title: 'Joins', body: 'on joins', author: u.Alice, tags: [tSql, { name: 'perf' }], views: 30 });
  await posts.save({ title: 'Draft', author: u.Bob, tags: [] });
  await posts.save({ title: 'Guide', body: 'a guide', author: u.Carol, tags: [tOrm], views: 20, publishedAt: new Date('2024-02-29T12:34:56Z') });
  assert.equal(await posts.count(), 4);
  assert.equal(await tags.count(), 3);
  const [{ n }] = await ds.query('SELECT COUNT(*) AS n FROM `post_tags`');
  assert.equal(Number(n), 5);
});

await step('eager and relations loading', async () => {
  const posts = ds.getRepository('Post');
  const hello = await posts.findOne({ where: { title: 'Hello' } });
  assert.equal(hello.author.name, 'Alice', 'eager ManyToOne'); // eager: true
  assert.equal(hello.tags, undefined);
  const withTags = await posts.findOne({ where: { title: 'Hello' }, relations: { tags: true } });
  assert.deepEqual(sorted(names(withTags.tags)), ['orm', 'sql']);
  const users = ds.getRepository('User');
  const alice = await users.findOne({ where: { id: u.Alice.id }, relations: { posts: { tags: true } }, order: { posts: { title: 'ASC' } } });
  assert.deepEqual(alice.posts.map((x) => x.title), ['Hello', 'Joins']);
  assert.deepEqual(sorted(names(alice.posts[1].tags)), ['perf', 'sql']);
  const byTag = await posts.find({ where: { tags: { name: 'orm' } }, order: { title: 'ASC' } });
  assert.deepEqual(byTag.map((x) => x.title), ['Guide', 'Hello']);
  const byAuthor = await posts.find({ where: { author: { name: 'Alice' } }, order: { views: 'DESC' } });
  assert.deepEqual(byAuthor.map((x) => x.title), ['Joins', 'Hello']);
  const guide = await posts.findOneBy({ title: 'Guide' });
  assert.equal(guide.publishedAt.getTime(), new Date('2024-02-29T12:34:56Z').getTime());
  assert.equal(guide.views, 20);
  const tagged = await ds.getRepository('Tag').find({ relations: { posts: true }, order: { name: 'ASC' } });
  assert.deepEqual(tagged.map((t) => [t.name, sorted(t.posts.map((x) => x.title))]),
    [['orm', ['Guide', 'Hello']], ['perf', ['Joins']], ['sql', ['Hello', 'Joins']]]);
});

await step('ManyToMany add / remove', async () => {
  const posts = ds.getRepository('Post');
  const draft = await posts.findOne({ where: { title: 'Draft' }, relations: { tags: true } });
  const perf = await ds.getRepository('Tag').findOneBy({ name: 'perf' });
  draft.tags.push(perf);
  await posts.save(draft);
  await ds.createQueryBuilder().relation('Post', 'tags').of(draft.id).add((await ds.getRepository('Tag').findOneBy({ name: 'sql' })).id);
  const hello = await posts.findOne({ where: { title: 'Hello' }, relations: { tags: true } });
  hello.tags = hello.tags.filter((t) => t.name !== 'orm');
  await posts.save(hello);
  const back = await posts.find({ where: { title: In(['Draft', 'Hello']) }, relations: { tags: true }, order: { title: 'ASC' } });
  assert.deepEqual(back.map((x) => [x.title, sorted(names(x.tags))]), [['Draft', ['perf', 'sql']], ['Hello', ['sql']]]);
});

await step('QueryBuilder joins / where / orderBy / skip / take / getManyAndCount', async () => {
  const qb = ds.getRepository('Post').createQueryBuilder('p')
    .innerJoinAndSelect('p.author', 'a')
    .leftJoinAndSelect('p.tags', 't')
    .where('a.isActive = :active', { active: true })
    .andWhere('p.title <> :skip', { skip: 'Nothing' })
    .orderBy('p.views', 'DESC')
    .addOrderBy('p.id', 'ASC')
    .skip(1)
    .take(2);
  const [page, count] = await qb.getManyAndCount();
  assert.equal(count, 4);
  assert.deepEqual(page.map((x) => [x.title, x.author.name, sorted(names(x.tags))]),
    [['Guide', "Carol O'Brien", ['orm']], ['Hello', 'Alice', ['sql']]]);
  const one = await ds.getRepository('User').createQueryBuilder('u')
    .leftJoinAndSelect('u.posts', 'p')
    .where('u.email = :email', { email: 'alice@example.com' })
    .orderBy('p.title', 'ASC')
    .getOne();
  assert.deepEqual(one.posts.map((x) => x.title), ['Hello', 'Joins']);
});

await step('QueryBuilder raw aggregates / subquery', async () => {
  const rows = await ds.getRepository('User').createQueryBuilder('u')
    .leftJoin('u.posts', 'p')
    .select('u.name', 'name')
    .addSelect('COUNT(p.id)', 'n')
    .addSelect('COALESCE(SUM(p.views), 0)', 'views')
    .groupBy('u.id')
    .addGroupBy('u.name')
    .having('COUNT(p.id) >= :min', { min: 1 })
    .orderBy('n', 'DESC')
    .addOrderBy('name', 'ASC')
    .getRawMany();
  assert.deepEqual(rows.map((r) => [r.name, Number(r.n), Number(r.views)]),
    [['Alice', 2, 40], ['Bob', 1, 0], ["Carol O'Brien", 1, 20]]);
  const popular = await ds.getRepository('User').createQueryBuilder('u')
    .where((qb) => `u.id IN ${qb.subQuery().select('p.authorId').from('Post', 'p').where('p.views >= :v').getQuery()}`)
    .setParameter('v', 20)
    .orderBy('u.id')
    .getMany();
  assert.deepEqual(names(popular), ['Alice', "Carol O'Brien"]);
  const { maxViews } = await ds.getRepository('Post').createQueryBuilder('p').select('MAX(p.views)', 'maxViews').getRawOne();
  assert.equal(Number(maxViews), 30);
});

await step('QueryBuilder update / delete / insert', async () => {
  const r = await ds.createQueryBuilder().update('Post').set({ views: () => 'views + 1' })
    .where('authorId = :id', { id: u.Alice.id }).execute();
  assert.equal(r.affected, 2);
  const ins = await ds.createQueryBuilder().insert().into('Tag').values([{ name: 'tmp1' }, { name: 'tmp2' }]).execute();
  assert.equal(ins.identifiers.length, 2);
  const del = await ds.createQueryBuilder().delete().from('Tag').where('name LIKE :p', { p: 'tmp%' }).execute();
  assert.equal(del.affected, 2);
  const views = (await ds.getRepository('Post').find({ where: { author: { id: u.Alice.id } }, order: { title: 'ASC' } })).map((x) => x.views);
  assert.deepEqual(views, [11, 31]);
});

await step('transaction commit', async () => {
  await ds.transaction(async (em) => {
    const gil = await em.save('User', { name: 'Gil', email: 'gil@example.com' });
    await em.save('Post', { title: 'Gil post', author: gil });
    u.Gil = gil;
  });
  assert.equal((await ds.getRepository('Post').findOneBy({ title: 'Gil post' })).author.name, 'Gil');
});

await step('transaction rollback', async () => {
  await assert.rejects(ds.transaction(async (em) => {
    await em.update('User', { id: u.Gil.id }, { balance: '999.00' });
    await em.delete('Post', { title: 'Gil post' });
    assert.equal(await em.countBy('Post', { title: 'Gil post' }), 0);
    throw new Error('boom');
  }), /boom/);
  assert.equal((await ds.getRepository('User').findOneBy({ id: u.Gil.id })).balance, '0.00');
  assert.equal(await ds.getRepository('Post').countBy({ title: 'Gil post' }), 1);
});

await step('nested transaction (savepoint)', async () => {
  const qr = ds.createQueryRunner();
  await qr.connect();
  try {
    await qr.startTransaction();
    await qr.manager.update('User', { id: u.Gil.id }, { balance: '1.00' });
    await qr.startTransaction(); // SAVEPOINT typeorm_1
    await qr.manager.update('User', { id: u.Gil.id }, { balance: '2.00' });
    await qr.manager.save('Post', { title: 'Inner', author: { id: u.Gil.id } });
    assert.equal((await qr.manager.findOneBy('User', { id: u.Gil.id })).balance, '2.00');
    await qr.rollbackTransaction(); // ROLLBACK TO SAVEPOINT typeorm_1
    assert.equal((await qr.manager.findOneBy('User', { id: u.Gil.id })).balance, '1.00');
    assert.equal(await qr.manager.countBy('Post', { title: 'Inner' }), 0);
    await qr.startTransaction();
    await qr.manager.save('Post', { title: 'Inner 2', author: { id: u.Gil.id } });
    await qr.commitTransaction(); // RELEASE SAVEPOINT
    await qr.commitTransaction(); // COMMIT
  } finally {
    if (qr.isTransactionActive) await qr.rollbackTransaction().catch(() => {});
    await qr.release();
  }
  assert.equal((await ds.getRepository('User').findOneBy({ id: u.Gil.id })).balance, '1.00');
  assert.equal(await ds.getRepository('Post').countBy({ title: 'Inner' }), 0);
  assert.equal(await ds.getRepository('Post').countBy({ title: 'Inner 2' }), 1);
});

await step('transaction isolation level + pessimistic lock', async () => {
  await ds.transaction('READ COMMITTED', async (em) => {
    const gil = await em.getRepository('User').findOne({ where: { id: u.Gil.id }, lock: { mode: 'pessimistic_write' } });
    assert.equal(gil.name, 'Gil');
    await em.update('User', { id: gil.id }, { role: 'writer' });
  });
  assert.equal((await ds.getRepository('User').findOneBy({ id: u.Gil.id })).role, 'writer');
});

await step('runMigrations', async () => {
  const ran = await ds.runMigrations({ transaction: 'each' });
  assert.deepEqual(ran.map((m) => m.name), ['CreateAuditLog1700000000001', 'AlterAuditLog1700000000002']);
  assert.ok((await tableNames(ds)).includes('typeorm_migrations'));
  const table = await ds.createQueryRunner().getTable('audit_log');
  assert.deepEqual(sorted(table.columns.map((c) => c.name)), ['at', 'detail', 'id', 'kind', 'userId']);
  assert.equal(table.findColumnByName('detail').type, 'text');
  assert.equal(table.foreignKeys.length, 1);
  assert.deepEqual(table.indices.map((i) => [i.name, i.columnNames]).filter(([n]) => n === 'IDX_audit_action'),
    [['IDX_audit_action', ['kind']]]);
  const rows = await ds.query('SELECT `kind`, `detail` FROM `audit_log`');
  assert.deepEqual(rows.map((r) => [r.kind, r.detail]), [['migrated', 'by 1700000000002']]);
  assert.equal(await ds.showMigrations(), false);
});

await step('undoLastMigration', async () => {
  await ds.undoLastMigration({ transaction: 'each' });
  const table = await ds.createQueryRunner().getTable('audit_log');
  assert.deepEqual(sorted(table.columns.map((c) => c.name)), ['action', 'at', 'id', 'userId']);
  await ds.undoLastMigration();
  assert.ok(!(await tableNames(ds)).includes('audit_log'));
  assert.equal(await ds.showMigrations(), true);
  const [{ n }] = await ds.query('SELECT COUNT(*) AS n FROM `typeorm_migrations`');
  assert.equal(Number(n), 0);
});

// --- schema change -------------------------------------------------------------------------------
await step('synchronize a changed schema', async () => {
  await destroy(ds);
  // Post.body becomes NOT NULL: give the NULL rows a value first
  ds = makeDataSource(2);
  await ds.initialize();
  await ds.query("UPDATE `posts` SET `body` = '' WHERE `body` IS NULL");
  await ds.synchronize();
  const users = await ds.createQueryRunner().getTable('users');
  assert.deepEqual(sorted(users.columns.map((c) => c.name)),
    sorted(['id', 'name', 'email', 'isActive', 'balance', 'role', 'nickname', 'score', 'createdAt', 'updatedAt']));
  assert.equal(users.findColumnByName('score').isNullable, false);
  const posts = await ds.createQueryRunner().getTable('posts');
  assert.equal(posts.findColumnByName('views').type, 'bigint');
  assert.equal(posts.findColumnByName('subtitle').length, '100');
  assert.equal(posts.findColumnByName('body').isNullable, false);
  assert.ok(posts.indices.some((i) => i.name === 'IDX_post_title'), 'IDX_post_title created');
});

await step('changed schema: synchronize again is a no-op', async () => {
  assert.deepEqual(await pendingSchemaChanges(ds), []);
});

await step('data survived synchronize', async () => {
  const users = ds.getRepository('User');
  const all = await users.find({ order: { id: 'ASC' } });
  assert.deepEqual(names(all), ['Alice', 'Bob', "Carol O'Brien", 'Dave', 'Gil']);
  assert.deepEqual(all.map((x) => x.score), [7, 7, 7, 7, 7]);
  assert.equal(all[0].nickname, null);
  assert.equal(all[0].balance, '100.50');
  await users.update({ name: 'Bob' }, { nickname: 'bobby' });
  assert.equal((await users.findOneBy({ nickname: 'bobby' })).email, 'bob@example.com');
  await ds.getRepository('Post').update({ title: 'Guide' }, { subtitle: 'S'.repeat(100) });
  assert.equal((await ds.getRepository('Post').findOneBy({ title: 'Guide' })).subtitle, 'S'.repeat(100));
  await ds.getRepository('Post').update({ title: 'Joins' }, { views: '5000000000' });
  assert.equal(String((await ds.getRepository('Post').findOneBy({ title: 'Joins' })).views), '5000000000');
  const hello = await ds.getRepository('Post').findOne({ where: { title: 'Hello' }, relations: { tags: true } });
  assert.equal(hello.author.name, 'Alice');
  assert.deepEqual(names(hello.tags), ['sql']);
});

await step('synchronize: add a NOT NULL column without default to a non-empty table', async () => {
  // ALTER TABLE `users` ADD `level` int NOT NULL: MySQL fills the implicit default (0)
  const ds3 = makeDataSource(3);
  let ok = false;
  try {
    await ds3.initialize();
    await ds3.synchronize();
    const levels = (await ds3.getRepository('User').find({ order: { id: 'ASC' } })).map((x) => x.level);
    assert.deepEqual(levels, [0, 0, 0, 0, 0]);
    await ds3.getRepository('User').update({ nickname: 'bobby' }, { level: 3 });
    assert.equal((await ds3.getRepository('User').findOneBy({ nickname: 'bobby' })).level, 3);
    assert.deepEqual(await pendingSchemaChanges(ds3).then((qs) => qs.filter((q) => q.includes('level'))), []);
    ok = true;
  } finally {
    // on failure go on with the version 2 DataSource, which matches the tables
    if (ok) {
      await destroy(ds);
      ds = ds3;
    } else {
      await destroy(ds3);
    }
  }
});

await step('delete cascades', async () => {
  await ds.getRepository('User').delete({ name: 'Alice' });
  assert.equal(await ds.getRepository('Post').countBy({ title: In(['Hello', 'Joins']) }), 0);
  const [{ n }] = await ds.query('SELECT COUNT(*) AS n FROM `post_tags` pt JOIN `tags` t ON t.id = pt.tagId WHERE t.name = ?', ['sql']);
  assert.equal(Number(n), 1); // only Draft's link is left
  assert.equal(await ds.getRepository('Post').countBy({ views: LessThan(0) }), 0);
});

await step('dropDatabase', async () => {
  await ds.dropDatabase(); // drops every table in the database
  assert.deepEqual(await tableNames(ds), []);
});

await destroy(ds);
finish();
