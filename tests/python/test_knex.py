"""Knex 3 (Node.js, mysql2 driver) against embedb.

Runs tests/node/knex_flow.mjs on a fresh database of the shared server: the schema builder
(createTable with increments / string / text / integer / boolean / decimal / timestamps, foreign
keys, indexes, unique; hasTable / hasColumn / columnInfo), migrations (migrate.latest / list / up /
down / rollback with an in-memory migration source and the knex_migrations_lock row taken FOR
UPDATE), alterTable (add column, .alter() to change type / nullability / default, setNullable /
dropNullable, renameColumn — also of a foreign key column —, dropColumn / dropIndex / dropForeign /
dropUnique), CRUD with onConflict merge / ignore, joins and aggregates, and transactions (commit,
rollback, nested through SAVEPOINT, isolation level, forUpdate). The script prints one PASS/FAIL
line per step and every SQL statement.

Needs `node` and tests/node/node_modules (.ci/run runs `npm ci` there); skipped otherwise.
"""

from __future__ import annotations

from node_flows import needs, run_flow

pytestmark = needs('knex', 'mysql2')


def test_knex_flow(embedb_server: tuple[str, int], db: str) -> None:
    run_flow('knex_flow.mjs', embedb_server, db, last_step='dropTable')
