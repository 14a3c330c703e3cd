"""Sequelize 6 (Node.js, mysql2 driver) against embedb.

Runs tests/node/sequelize_flow.mjs on a fresh database of the shared server: mixed-case models
(`Users` AS `User` aliases), associations and eager loading, CRUD, aggregates, managed and nested
transactions (SAVEPOINT), sync({alter: true}) (ALTER TABLE … ADD / CHANGE / DROP), describeTable,
renameColumn and drop. The script prints one PASS/FAIL line per step and every SQL statement.

Needs `node` and tests/node/node_modules (.ci/run runs `npm ci` there); skipped otherwise.
"""

from __future__ import annotations

from node_flows import needs, run_flow

pytestmark = needs('sequelize', 'mysql2')


def test_sequelize_flow(embedb_server: tuple[str, int], db: str) -> None:
    run_flow('sequelize_flow.mjs', embedb_server, db, last_step='drop')
