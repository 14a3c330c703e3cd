// Sequelize 6 + mysql2 against a MySQL-compatible server (embedb, or MySQL/MariaDB as a reference).
//
//   EMBEDB_HOST (127.0.0.1), EMBEDB_PORT (4000), EMBEDB_DATABASE (sequelize_test): where to connect,
//   as root with an empty password. The database must exist; the flow leaves it empty.
//   EMBEDB_SQL_LOG=1 prints every statement Sequelize sends ("  SQL ..." lines).
//
// Prints one line per step, "PASS name" or "FAIL name: error [sql: ...]", and exits 1 if any step
// failed. The steps run in order and share state; a failure does not stop the later steps.

import assert from 'node:assert/strict';
import { DataTypes, Op, QueryTypes, Sequelize } from 'sequelize';
import { stepper } from './steps.mjs';

const host = process.env.EMBEDB_HOST || '127.0.0.1';
const port = Number(process.env.EMBEDB_PORT || 4000);
const database = process.env.EMBEDB_DATABASE || 'sequelize_test';
const logSql = ['1', 'true', 'yes'].includes((process.env.EMBEDB_SQL_LOG || '').toLowerCase());

function connectSequelize() {
  return new Sequelize(database, 'root', '', {
    host,
    port,
    dialect: 'mysql',
    logging: logSql ? (sql) => console.log(`  SQL ${sql}`) : false,
    pool: { max: 3, min: 0, acquire: 30000, idle: 10000 },
    dialectOptions: { connectTimeout: 10000 },
  });
}

// ENUM columns are tested on a model of their own (the "ENUM column" step), so that a server
// without ENUM still runs the rest of the flow.

// --- models --------------------------------------------------------------------------------------
// version 1 is created by sync({force: true}); version 2 changes User and is applied by
// sync({alter: true}).
function defineModels(sequelize, version) {
  const userAttrs = {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    firstName: { type: DataTypes.STRING(64), allowNull: false },
    lastName: { type: DataTypes.STRING(64), allowNull: false },
    email: { type: DataTypes.STRING(128), allowNull: false, unique: true },
    isActive: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
    balance: { type: DataTypes.DECIMAL(10, 2), allowNull: false, defaultValue: 0 },
    profile: { type: DataTypes.JSON, allowNull: true },
    role: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'member' },
    loginCount: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    legacyCode: { type: DataTypes.STRING(16), allowNull: true },
  };
  if (version >= 2) {
    delete userAttrs.legacyCode; // dropped column
    userAttrs.lastName = { type: DataTypes.STRING(128), allowNull: true }; // wider, now nullable
    userAttrs.loginCount = { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 }; // INT -> BIGINT
    userAttrs.balance = { type: DataTypes.DECIMAL(12, 3), allowNull: false, defaultValue: 0 };
    userAttrs.nickname = { type: DataTypes.STRING(40), allowNull: true }; // new nullable column
    userAttrs.score = { type: DataTypes.INTEGER, allowNull: false, defaultValue: 7 }; // new NOT NULL column
  }
  const User = sequelize.define('User', userAttrs, {});

  const Project = sequelize.define('Project', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    title: { type: DataTypes.STRING(100), allowNull: false },
    budget: { type: DataTypes.DECIMAL(12, 2), allowNull: true },
    status: { type: DataTypes.STRING(16), allowNull: false, defaultValue: 'planned' },
    startsOn: { type: DataTypes.DATEONLY, allowNull: true },
  }, {
    indexes: [{ fields: ['status'] }, { unique: true, fields: ['ownerId', 'title'] }],
  });

  const UserProject = sequelize.define('UserProject', {
    projectRole: { type: DataTypes.STRING(32), allowNull: false, defaultValue: 'dev' },
    hoursPerWeek: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
  });

  User.hasMany(Project, { as: 'ownedProjects', foreignKey: 'ownerId' });
  Project.belongsTo(User, { as: 'owner', foreignKey: 'ownerId' });
  User.belongsToMany(Project, { through: UserProject });
  Project.belongsToMany(User, { through: UserProject });
  return { User, Project, UserProject };
}

// --- harness -------------------------------------------------------------------------------------
const STEP_TIMEOUT_MS = 60000;

// close a pool without waiting forever for a connection a failed step left checked out
async function closeSequelize(s) {
  await Promise.race([s.close().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000))]);
}

function describeError(e) {
  let s = `${e && e.name ? e.name : 'Error'}: ${e && e.message ? e.message : String(e)}`;
  const orig = e && (e.original || e.parent);
  if (orig && (orig.code || orig.errno)) s += ` [code=${orig.code} errno=${orig.errno} sqlState=${orig.sqlState}]`;
  const sql = (e && e.sql) || (orig && orig.sql);
  if (sql) s += ` [sql: ${sql}]`;
  return s.replace(/\s*\n\s*/g, ' ');
}

const { step, finish } = stepper(describeError, { logSql, timeoutMs: STEP_TIMEOUT_MS });

// JSON comes back parsed from MySQL (JSON column type); MariaDB stores JSON as LONGTEXT and the
// mysql dialect returns the text. Accept both.
const asJson = (v) => (typeof v === 'string' ? JSON.parse(v) : v);
const ids = (rows) => rows.map((r) => r.id);
const sorted = (xs) => [...xs].sort();

// --- the flow ------------------------------------------------------------------------------------
let sequelize = connectSequelize();
let { User, Project, UserProject } = defineModels(sequelize, 1);
const u = {}; // users by first name
const p = {}; // projects by title

await step('authenticate', async () => {
  await sequelize.authenticate();
  const [row] = await sequelize.query('SELECT 1 + 1 AS two', { type: QueryTypes.SELECT });
  assert.equal(Number(row.two), 2);
});

await step('sync force', async () => {
  await sequelize.sync({ force: true });
  const tables = sorted(await sequelize.getQueryInterface().showAllTables());
  for (const t of ['Projects', 'UserProjects', 'Users']) assert.ok(tables.includes(t), `table ${t} in ${tables}`);
});

await step('create with defaults', async () => {
  const alice = await User.create({
    firstName: 'Alice', lastName: 'Smith', email: 'alice@example.com', role: 'admin',
    balance: '100.50', profile: { city: 'Berlin', tags: ['a', 'b'] }, legacyCode: 'L-1',
  });
  assert.equal(typeof alice.id, 'number');
  assert.ok(alice.id > 0);
  assert.ok(alice.createdAt instanceof Date);
  const back = await User.findByPk(alice.id);
  assert.equal(back.firstName, 'Alice');
  assert.equal(back.isActive, true);
  assert.equal(back.loginCount, 0);
  assert.equal(back.role, 'admin');
  assert.equal(back.balance, '100.50');
  assert.deepEqual(asJson(back.profile), { city: 'Berlin', tags: ['a', 'b'] });
  assert.equal(back.legacyCode, 'L-1');
  assert.ok(Math.abs(back.createdAt.getTime() - alice.createdAt.getTime()) < 1000, 'createdAt round-trips');
  u.Alice = back;
});

await step('bulkCreate', async () => {
  const rows = await User.bulkCreate([
    { firstName: 'Bob', lastName: 'Jones', email: 'bob@example.com', balance: '20.00', profile: { city: 'Paris' } },
    { firstName: 'Carol', lastName: 'Smith', email: 'carol@example.com', profile: { city: 'Berlin' } },
    { firstName: 'Dave', lastName: 'Brown', email: 'dave@example.com', role: 'guest', balance: '5.25', isActive: false },
    { firstName: 'Eve', lastName: 'Stone', email: 'eve@example.com', balance: '42.00', profile: { city: 'Oslo' } },
  ]);
  assert.equal(rows.length, 4);
  // mysql returns the first auto id of a multi-row INSERT; Sequelize numbers the rest from it
  const all = await User.findAll({ order: [['id', 'ASC']] });
  assert.deepEqual(all.map((r) => r.firstName), ['Alice', 'Bob', 'Carol', 'Dave', 'Eve']);
  assert.deepEqual(rows.map((r) => r.id), ids(all.slice(1)));
  for (const r of all) u[r.firstName] = r;
  assert.equal(u.Carol.balance, '0.00');
  assert.equal(u.Dave.isActive, false);
  assert.equal(u.Dave.profile, null);
});

await step('find where Op.in / Op.like / order / limit / offset', async () => {
  const smiths = await User.findAll({ where: { lastName: { [Op.like]: 'Sm%' } }, order: [['firstName', 'DESC']] });
  assert.deepEqual(smiths.map((r) => r.firstName), ['Carol', 'Alice']);
  const some = await User.findAll({
    where: { firstName: { [Op.in]: ['Bob', 'Eve', 'Nobody'] }, isActive: true },
    order: [['id', 'ASC']],
  });
  assert.deepEqual(some.map((r) => r.firstName), ['Bob', 'Eve']);
  const page = await User.findAll({ order: [['balance', 'DESC'], ['id', 'ASC']], limit: 2, offset: 1 });
  assert.deepEqual(page.map((r) => r.firstName), ['Eve', 'Bob']);
  const mixed = await User.findAll({
    attributes: ['id', 'firstName'],
    where: { [Op.or]: [{ role: 'guest' }, { balance: { [Op.gte]: 100 } }], email: { [Op.notLike]: '%@nowhere%' } },
    order: [['firstName', 'ASC']],
  });
  assert.deepEqual(mixed.map((r) => r.firstName), ['Alice', 'Dave']);
  const one = await User.findOne({ where: { email: 'carol@example.com' } });
  assert.equal(one.id, u.Carol.id);
  const none = await User.findOne({ where: { email: 'zed@example.com' } });
  assert.equal(none, null);
});

await step('count / findAndCountAll', async () => {
  assert.equal(await User.count(), 5);
  assert.equal(await User.count({ where: { isActive: false } }), 1);
  const { count, rows } = await User.findAndCountAll({
    where: { role: { [Op.ne]: 'guest' } }, order: [['id', 'ASC']], limit: 2,
  });
  assert.equal(count, 4);
  assert.deepEqual(rows.map((r) => r.firstName), ['Alice', 'Bob']);
});

await step('aggregates', async () => {
  assert.equal(Number(await User.sum('balance')), 167.75);
  assert.equal(Number(await User.max('balance')), 100.5);
  assert.equal(Number(await User.min('balance', { where: { isActive: true } })), 0);
  const groups = await User.findAll({
    attributes: ['role', [sequelize.fn('COUNT', sequelize.col('id')), 'n'],
      [sequelize.fn('SUM', sequelize.col('balance')), 'total']],
    group: ['role'],
    raw: true,
  });
  const byRole = Object.fromEntries(groups.map((g) => [g.role, [Number(g.n), Number(g.total)]]));
  assert.deepEqual(byRole, { admin: [1, 100.5], member: [3, 62], guest: [1, 5.25] });
  const having = await User.findAll({
    attributes: ['lastName', [sequelize.fn('COUNT', sequelize.col('User.id')), 'cnt']],
    group: ['lastName'],
    having: sequelize.where(sequelize.fn('COUNT', sequelize.col('User.id')), { [Op.gt]: 1 }),
    raw: true,
  });
  assert.deepEqual(having.map((r) => [r.lastName, Number(r.cnt)]), [['Smith', 2]]);
});

await step('increment / decrement', async () => {
  await u.Bob.increment('loginCount', { by: 3 });
  await u.Bob.decrement('loginCount');
  await User.increment({ loginCount: 10, balance: 1 }, { where: { firstName: 'Eve' } });
  const bob = await User.findByPk(u.Bob.id);
  const eve = await User.findByPk(u.Eve.id);
  assert.equal(bob.loginCount, 2);
  assert.equal(eve.loginCount, 10);
  assert.equal(eve.balance, '43.00');
  assert.ok(eve.updatedAt.getTime() >= eve.createdAt.getTime());
});

await step('update / save', async () => {
  const [affected] = await User.update({ isActive: true }, { where: { firstName: 'Dave' } });
  assert.equal(affected, 1);
  const [none] = await User.update({ isActive: true }, { where: { firstName: 'Nobody' } });
  assert.equal(none, 0);
  const carol = await User.findByPk(u.Carol.id);
  carol.profile = { city: 'Munich', pets: 2 };
  carol.lastName = "O'Brien";
  await carol.save();
  const back = await User.findByPk(u.Carol.id);
  assert.equal(back.lastName, "O'Brien");
  assert.deepEqual(asJson(back.profile), { city: 'Munich', pets: 2 });
  assert.equal((await User.findByPk(u.Dave.id)).isActive, true);
});

await step('upsert / findOrCreate', async () => {
  await User.upsert({ id: u.Eve.id, firstName: 'Eve', lastName: 'Stone', email: 'eve@example.com', role: 'admin' });
  assert.equal((await User.findByPk(u.Eve.id)).role, 'admin');
  const [frank, created] = await User.findOrCreate({
    where: { email: 'frank@example.com' },
    defaults: { firstName: 'Frank', lastName: 'Miller' },
  });
  assert.equal(created, true);
  const [again, created2] = await User.findOrCreate({
    where: { email: 'frank@example.com' },
    defaults: { firstName: 'Frank', lastName: 'Miller' },
  });
  assert.equal(created2, false);
  assert.equal(again.id, frank.id);
  u.Frank = frank;
  assert.equal(await User.count(), 6);
});

await step('unique constraint error', async () => {
  await assert.rejects(
    User.create({ firstName: 'X', lastName: 'Y', email: 'alice@example.com' }),
    (e) => e.name === 'SequelizeUniqueConstraintError',
  );
  assert.equal(await User.count(), 6);
});

await step('associations create (hasMany / belongsTo / belongsToMany)', async () => {
  p.Apollo = await Project.create({ title: 'Apollo', budget: '1000.00', status: 'active', ownerId: u.Alice.id, startsOn: '2024-02-29' });
  p.Borealis = await u.Alice.createOwnedProject({ title: 'Borealis', budget: '250.50' });
  p.Cygnus = await Project.create({ title: 'Cygnus', budget: '99.99', status: 'done' });
  await p.Cygnus.setOwner(u.Bob);
  await u.Alice.addProject(p.Apollo, { through: { projectRole: 'lead', hoursPerWeek: 10 } });
  await p.Apollo.addUsers([u.Bob, u.Carol], { through: { hoursPerWeek: 4 } });
  await u.Bob.addProject(p.Borealis, { through: { hoursPerWeek: 7 } });
  await u.Eve.setProjects([p.Cygnus], { through: { projectRole: 'qa', hoursPerWeek: 2 } });
  assert.equal(await UserProject.count(), 5);
  assert.equal(await u.Alice.countOwnedProjects(), 2);
  assert.equal((await p.Cygnus.getOwner()).firstName, 'Bob');
  const bobProjects = await u.Bob.getProjects({ order: [['title', 'ASC']] });
  assert.deepEqual(bobProjects.map((x) => x.title), ['Apollo', 'Borealis']);
  assert.equal(bobProjects[0].UserProject.hoursPerWeek, 4);
  assert.equal(bobProjects[0].UserProject.projectRole, 'dev');
  assert.equal(await u.Alice.hasProject(p.Apollo), true);
  assert.equal(await u.Alice.hasProject(p.Cygnus), false);
  const apollo = await Project.findByPk(p.Apollo.id);
  assert.equal(apollo.startsOn, '2024-02-29');
  assert.equal(apollo.budget, '1000.00');
});

await step('eager loading include', async () => {
  const users = await User.findAll({
    include: [{ model: Project, as: 'ownedProjects' }],
    where: { firstName: { [Op.in]: ['Alice', 'Bob', 'Carol'] } },
    order: [['id', 'ASC'], [{ model: Project, as: 'ownedProjects' }, 'title', 'ASC']],
  });
  assert.deepEqual(users.map((x) => [x.firstName, x.ownedProjects.map((q) => q.title)]),
    [['Alice', ['Apollo', 'Borealis']], ['Bob', ['Cygnus']], ['Carol', []]]);
  const projects = await Project.findAll({
    include: [
      { model: User, as: 'owner', attributes: ['id', 'firstName'] },
      { model: User, attributes: ['firstName'], through: { attributes: ['projectRole', 'hoursPerWeek'] } },
    ],
    order: [['title', 'ASC'], [User, 'firstName', 'ASC']],
  });
  assert.deepEqual(projects.map((x) => [x.title, x.owner.firstName, x.Users.map((m) => `${m.firstName}:${m.UserProject.projectRole}:${m.UserProject.hoursPerWeek}`)]), [
    ['Apollo', 'Alice', ['Alice:lead:10', 'Bob:dev:4', 'Carol:dev:4']],
    ['Borealis', 'Alice', ['Bob:dev:7']],
    ['Cygnus', 'Bob', ['Eve:qa:2']],
  ]);
});

// with a LIMIT and a hasMany include Sequelize selects from a derived table:
//   SELECT `User`.*, ... FROM (SELECT ... FROM `Users` AS `User` ... LIMIT n) AS `User` LEFT OUTER JOIN ...
// and a required include with a where adds a correlated `( SELECT ... LIMIT 1 ) IS NOT NULL`.
await step('include required + where + limit (correlated subquery)', async () => {
  const owners = await User.findAll({
    include: [{ model: Project, as: 'ownedProjects', required: true, where: { status: { [Op.ne]: 'done' } } }],
    order: [['id', 'ASC']],
    limit: 5,
  });
  assert.deepEqual(owners.map((x) => [x.firstName, sorted(x.ownedProjects.map((q) => q.title))]),
    [['Alice', ['Apollo', 'Borealis']]]);
});

await step('include + limit (derived table)', async () => {
  const firstTwo = await User.findAll({
    include: [{ model: Project, as: 'ownedProjects' }],
    order: [['id', 'ASC']],
    limit: 2,
  });
  assert.deepEqual(firstTwo.map((x) => [x.firstName, x.ownedProjects.length]), [['Alice', 2], ['Bob', 1]]);
});

await step('count distinct / findAndCountAll with include', async () => {
  const n = await User.count({ include: [{ model: Project, required: true }], distinct: true });
  assert.equal(n, 4);
  const { count, rows } = await Project.findAndCountAll({
    include: [{ model: User, as: 'owner', where: { firstName: 'Alice' } }],
    order: [['title', 'DESC']],
    limit: 1,
  });
  assert.equal(count, 2);
  assert.deepEqual(rows.map((x) => x.title), ['Borealis']);
});

await step('JSON where', async () => {
  const berlin = await User.findAll({ where: { profile: { city: 'Berlin' } }, order: [['id', 'ASC']] });
  assert.deepEqual(berlin.map((x) => x.firstName), ['Alice']);
  // (a '$' in a sequelize.fn() string argument is sent as '$$'; a literal is sent as written)
  const city = sequelize.literal("JSON_UNQUOTE(JSON_EXTRACT(`profile`, '$.city'))");
  const raw = await User.findAll({
    attributes: ['firstName', [city, 'city']],
    where: sequelize.where(city, { [Op.not]: null }),
    order: [['firstName', 'ASC']],
    raw: true,
  });
  assert.deepEqual(raw.map((r) => [r.firstName, r.city]),
    [['Alice', 'Berlin'], ['Bob', 'Paris'], ['Carol', 'Munich'], ['Eve', 'Oslo']]);
});

await step('raw query with replacements', async () => {
  const rows = await sequelize.query(
    'SELECT `User`.`firstName` AS `First`, COUNT(`up`.`ProjectId`) AS `n` FROM `Users` AS `User` '
    + 'LEFT JOIN `UserProjects` AS `up` ON `up`.`UserId` = `User`.`id` WHERE `User`.`lastName` IN (:names) '
    + 'GROUP BY `User`.`id`, `User`.`firstName` ORDER BY `User`.`firstName`',
    { replacements: { names: ['Smith', 'Jones', "O'Brien"] }, type: QueryTypes.SELECT },
  );
  assert.deepEqual(rows.map((r) => [r.First, Number(r.n)]), [['Alice', 1], ['Bob', 2], ['Carol', 1]]);
});

await step('managed transaction commit', async () => {
  await sequelize.transaction(async (t) => {
    const frank = await User.findByPk(u.Frank.id, { transaction: t, lock: t.LOCK.UPDATE });
    await frank.update({ balance: '7.77' }, { transaction: t });
    await Project.create({ title: 'Draco', ownerId: u.Frank.id }, { transaction: t });
  });
  assert.equal((await User.findByPk(u.Frank.id)).balance, '7.77');
  assert.equal(await Project.count({ where: { ownerId: u.Frank.id } }), 1);
});

await step('managed transaction rollback', async () => {
  await assert.rejects(sequelize.transaction(async (t) => {
    await User.update({ balance: '999.00' }, { where: { id: u.Frank.id }, transaction: t });
    await Project.destroy({ where: { ownerId: u.Frank.id }, transaction: t });
    assert.equal(await Project.count({ where: { ownerId: u.Frank.id }, transaction: t }), 0);
    throw new Error('boom');
  }), /boom/);
  assert.equal((await User.findByPk(u.Frank.id)).balance, '7.77');
  assert.equal(await Project.count({ where: { ownerId: u.Frank.id } }), 1);
});

await step('nested transaction (savepoint) inner rollback', async () => {
  await sequelize.transaction(async (outer) => {
    await User.update({ loginCount: 100 }, { where: { id: u.Frank.id }, transaction: outer });
    await assert.rejects(sequelize.transaction({ transaction: outer }, async (inner) => {
      await User.update({ loginCount: 200 }, { where: { id: u.Frank.id }, transaction: inner });
      await Project.create({ title: 'Eridanus', ownerId: u.Frank.id }, { transaction: inner });
      assert.equal((await User.findByPk(u.Frank.id, { transaction: inner })).loginCount, 200);
      throw new Error('inner failure');
    }), /inner failure/);
    // after ROLLBACK TO SAVEPOINT the outer transaction sees its own write, not the inner ones
    assert.equal((await User.findByPk(u.Frank.id, { transaction: outer })).loginCount, 100);
    await sequelize.transaction({ transaction: outer }, async (inner2) => {
      await Project.create({ title: 'Fornax', ownerId: u.Frank.id }, { transaction: inner2 });
    });
  });
  assert.equal((await User.findByPk(u.Frank.id)).loginCount, 100);
  const titles = (await Project.findAll({ where: { ownerId: u.Frank.id }, order: [['title', 'ASC']] })).map((x) => x.title);
  assert.deepEqual(titles, ['Draco', 'Fornax']);
});

await step('unmanaged transaction + isolation level', async () => {
  const t = await sequelize.transaction({ isolationLevel: Sequelize.Transaction.ISOLATION_LEVELS.READ_COMMITTED });
  try {
    await Project.create({ title: 'Gemini', ownerId: u.Frank.id }, { transaction: t });
  } finally {
    await t.rollback();
  }
  assert.equal(await Project.count({ where: { title: 'Gemini' } }), 0);
  const t2 = await sequelize.transaction();
  try {
    await Project.create({ title: 'Gemini', ownerId: u.Frank.id }, { transaction: t2 });
    await t2.commit();
  } finally {
    if (!t2.finished) await t2.rollback();
  }
  assert.equal(await Project.count({ where: { title: 'Gemini' } }), 1);
});

await step('destroy', async () => {
  const gemini = await Project.findOne({ where: { title: 'Gemini' } });
  await gemini.destroy();
  const n = await Project.destroy({ where: { title: { [Op.in]: ['Draco', 'Fornax'] } } });
  assert.equal(n, 2);
  await u.Eve.removeProject(p.Cygnus);
  assert.equal(await UserProject.count(), 4);
  await u.Frank.destroy();
  assert.equal(await User.findByPk(u.Frank.id), null);
  assert.equal(await User.count(), 5);
  assert.equal(await Project.count(), 3);
});

// --- schema changes ------------------------------------------------------------------------------
await step('ENUM column', async () => {
  // a model of its own on a second connection pool: create, filter, sync({alter}) adds a value
  const s2 = connectSequelize();
  const defineTicket = (values) => s2.define('Ticket', {
    subject: { type: DataTypes.STRING(64), allowNull: false },
    state: { type: DataTypes.ENUM(...values), allowNull: false, defaultValue: 'open' },
  });
  try {
    let Ticket = defineTicket(['open', 'closed']);
    await Ticket.sync({ force: true });
    await Ticket.bulkCreate([{ subject: 'a' }, { subject: 'b', state: 'closed' }, { subject: 'c' }]);
    const open = await Ticket.findAll({ where: { state: 'open' }, order: [['subject', 'ASC']] });
    assert.deepEqual(open.map((x) => x.subject), ['a', 'c']);
    const cols = await s2.getQueryInterface().describeTable('Tickets');
    assert.match(cols.state.type, /^ENUM\('open','closed'\)$/);
    Ticket = defineTicket(['open', 'closed', 'archived']);
    await Ticket.sync({ alter: true });
    await Ticket.update({ state: 'archived' }, { where: { subject: 'b' } });
    const states = await Ticket.findAll({ order: [['subject', 'ASC']] });
    assert.deepEqual(states.map((x) => x.state), ['open', 'archived', 'open']);
  } finally {
    await s2.getQueryInterface().dropTable('Tickets').catch(() => {});
    await closeSequelize(s2);
  }
});

await step('sync alter (add / change / drop columns)', async () => {
  await closeSequelize(sequelize);
  sequelize = connectSequelize();
  ({ User, Project, UserProject } = defineModels(sequelize, 2));
  await sequelize.sync({ alter: true });
  const cols = await sequelize.getQueryInterface().describeTable('Users');
  assert.ok(cols.nickname, 'nickname column added');
  assert.ok(cols.score, 'score column added');
  assert.ok(!cols.legacyCode, 'legacyCode column dropped');
});

await step('data survived alter', async () => {
  const all = await User.findAll({ order: [['id', 'ASC']] });
  assert.deepEqual(all.map((x) => x.firstName), ['Alice', 'Bob', 'Carol', 'Dave', 'Eve']);
  const alice = all[0];
  assert.equal(alice.email, 'alice@example.com');
  assert.equal(alice.balance, '100.500');
  assert.deepEqual(asJson(alice.profile), { city: 'Berlin', tags: ['a', 'b'] });
  assert.equal(alice.score, 7);
  assert.equal(alice.nickname, null);
  assert.equal(all[1].loginCount, 2);
  assert.equal(all[4].role, 'admin');
  assert.equal(await Project.count(), 3);
  assert.equal(await UserProject.count(), 4);
});

await step('findOne with includes after alter', async () => {
  const apollo = await Project.findOne({ where: { title: 'Apollo' }, include: [{ model: User, as: 'owner' }, User] });
  assert.equal(apollo.owner.firstName, 'Alice');
  assert.deepEqual(sorted(apollo.Users.map((x) => x.firstName)), ['Alice', 'Bob', 'Carol']);
});

await step('new and changed columns usable', async () => {
  await User.update({ nickname: 'Ally', score: 9 }, { where: { firstName: 'Alice' } });
  await User.update({ lastName: null }, { where: { firstName: 'Dave' } }); // now nullable
  await User.update({ loginCount: 5000000000 }, { where: { firstName: 'Bob' } }); // needs BIGINT
  const ally = await User.findOne({ where: { nickname: 'Ally' } });
  assert.equal(ally.firstName, 'Alice');
  assert.equal(ally.score, 9);
  assert.equal((await User.findOne({ where: { lastName: null } })).firstName, 'Dave');
  assert.equal(Number((await User.findOne({ where: { firstName: 'Bob' } })).loginCount), 5000000000);
  const long = 'L'.repeat(100);
  await User.update({ lastName: long }, { where: { firstName: 'Eve' } }); // needs VARCHAR(128)
  assert.equal((await User.findByPk(u.Eve.id)).lastName, long);
  const gil = await User.create({ firstName: 'Gil', email: 'gil@example.com', balance: '1.234' });
  const back = await User.findByPk(gil.id);
  assert.equal(back.score, 7);
  assert.equal(back.lastName, null);
  assert.equal(back.balance, '1.234');
});

await step('describeTable', async () => {
  const cols = await sequelize.getQueryInterface().describeTable('Users');
  assert.equal(cols.id.primaryKey, true);
  assert.equal(cols.id.autoIncrement, true);
  assert.match(cols.loginCount.type, /^BIGINT/);
  assert.equal(cols.loginCount.allowNull, false);
  assert.match(cols.lastName.type, /^VARCHAR\(128\)$/);
  assert.equal(cols.lastName.allowNull, true);
  assert.match(cols.balance.type, /^DECIMAL\(12,3\)$/);
  assert.match(cols.nickname.type, /^VARCHAR\(40\)$/);
  assert.equal(cols.nickname.allowNull, true);
  assert.equal(cols.score.allowNull, false);
  assert.equal(String(cols.score.defaultValue), '7');
  assert.match(cols.isActive.type, /^TINYINT\(1\)$/);
  assert.equal(cols.firstName.allowNull, false);
  const pcols = await sequelize.getQueryInterface().describeTable('Projects');
  assert.deepEqual(sorted(Object.keys(pcols)),
    sorted(['id', 'title', 'budget', 'status', 'startsOn', 'ownerId', 'createdAt', 'updatedAt']));
  assert.match(pcols.startsOn.type, /^DATE$/);
});

await step('showAllTables / showIndex', async () => {
  const qi = sequelize.getQueryInterface();
  assert.deepEqual(sorted(await qi.showAllTables()), ['Projects', 'UserProjects', 'Users']);
  const indexes = await qi.showIndex('Projects');
  const names = indexes.map((i) => i.name);
  assert.ok(names.includes('PRIMARY'), `PRIMARY in ${names}`);
  assert.ok(indexes.some((i) => i.unique && i.fields.map((f) => f.attribute).join(',') === 'ownerId,title'),
    `unique (ownerId,title) in ${JSON.stringify(indexes)}`);
});

await step('renameColumn', async () => {
  const qi = sequelize.getQueryInterface();
  await qi.renameColumn('Users', 'nickname', 'displayName');
  const cols = await qi.describeTable('Users');
  assert.ok(cols.displayName && !cols.nickname);
  assert.match(cols.displayName.type, /^VARCHAR\(40\)$/);
  const rows = await sequelize.query('SELECT `displayName` FROM `Users` WHERE `firstName` = ?',
    { replacements: ['Alice'], type: QueryTypes.SELECT });
  assert.deepEqual(rows, [{ displayName: 'Ally' }]);
  await qi.renameColumn('Users', 'displayName', 'nickname');
});

await step('drop', async () => {
  await sequelize.drop();
  assert.deepEqual(await sequelize.getQueryInterface().showAllTables(), []);
});

await closeSequelize(sequelize);
finish();
