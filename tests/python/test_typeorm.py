"""TypeORM 1 (Node.js, type "mysql" with the mysql2 driver, EntitySchema entities) against embedb.

Runs tests/node/typeorm_flow.mjs on a fresh database of the shared server: synchronize: true
(creates the tables; a second synchronize of the same schema must find nothing to change, which
checks information_schema against what TypeORM created; then a changed schema is synchronized:
added, retyped, widened, dropped columns, a new index, a NOT NULL column without a default),
repositories (save, find / findOne / findOneBy with where operators, update, increment, delete,
remove), relations (ManyToOne eager, OneToMany, ManyToMany with a join table, `relations` loading),
the QueryBuilder (joins, where, orderBy, skip / take with getManyAndCount, raw aggregates,
subqueries, update / insert / delete), transactions (dataSource.transaction commit / rollback, a
QueryRunner transaction nested through SAVEPOINT, isolation level, pessimistic_write lock),
migrations (runMigrations / undoLastMigration with QueryRunner createTable / addColumn /
renameColumn / changeColumn / createIndex) and dropDatabase. The script prints one PASS/FAIL line
per step and every SQL statement.

Needs `node` and tests/node/node_modules (.ci/run runs `npm ci` there); skipped otherwise.
"""

from __future__ import annotations

from node_flows import needs, run_flow

pytestmark = needs('typeorm', 'mysql2')


def test_typeorm_flow(embedb_server: tuple[str, int], db: str) -> None:
    run_flow('typeorm_flow.mjs', embedb_server, db, last_step='dropDatabase')
