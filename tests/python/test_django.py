"""embedb under a real Django 5.2 project (tests/python/django_app), driver mysqlclient (MySQLdb).

Every step runs ``python manage.py ...`` in a subprocess, so Django's global state never lives in
the pytest process. The steps build on each other and run in file order on one database:

1. ``check`` (with database checks) and ``makemigrations --check`` (the checked-in migrations
   match the models);
2. ``migrate``: auth, contenttypes, sessions, admin and ``shop`` (FK, M2M, JSON, Decimal,
   auto_now_add, defaults; 0002 adds a column with a default, alters a column, renames a
   column and adds an index);
3. ORM sections (``manage.py shop_smoke SECTION``): CRUD with JSON key lookups, relations
   (select_related/prefetch_related, M2M add/remove), aggregates (annotate/aggregate), nested
   ``transaction.atomic()`` blocks, bulk_create/update()/cascading delete(), contrib apps;
4. ``inspectdb``;
5. ``migrate shop 0001``, ``migrate shop zero``, then forward again.

Every SQL statement Django sends is logged to a file per step; when a step fails, the assertion
message ends with the statements that failed (with their errors) and the last ones logged.

``EMBEDB_DJANGO_TARGET=host:port`` runs the module against another server (e.g. a MariaDB or
MySQL for reference) instead of embedb; user root with an empty password.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("django", minversion="5.2", reason="Django 5.2 is not installed (pip install 'Django>=5.2,<5.3')")
pytest.importorskip("MySQLdb", reason="mysqlclient is not installed (pip install mysqlclient)")

from conftest import connect  # noqa: E402

APP_DIR = Path(__file__).resolve().parent / "django_app"
DB_NAME = "pytest_django_app"
STEP_TIMEOUT = 300
SHOP_TABLES = {"shop_category", "shop_tag", "shop_product", "shop_product_tags", "shop_order"}
CONTRIB_TABLES = {"auth_user", "auth_group", "auth_permission", "auth_user_groups",
                  "auth_group_permissions", "auth_user_user_permissions", "django_content_type",
                  "django_session", "django_admin_log", "django_migrations"}


@pytest.fixture(scope="module")
def target(request: pytest.FixtureRequest) -> tuple[str, int]:
    override = os.environ.get("EMBEDB_DJANGO_TARGET")
    if override:
        host, _, port = override.rpartition(":")
        return (host or "127.0.0.1", int(port))
    return request.getfixturevalue("embedb_server")


@pytest.fixture(scope="module")
def django_db(target: tuple[str, int]) -> Iterator[str]:
    c = connect(*target)
    try:
        with c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
            # Django's case-insensitive lookups (icontains, iexact) rely on a _ci collation. TiDB's
            # default is utf8mb4_bin (MySQL's and MariaDB's are _ci), so a Django database on
            # TiDB declares one, as here.
            cur.execute(f"CREATE DATABASE `{DB_NAME}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    finally:
        c.close()
    yield DB_NAME
    try:
        c = connect(*target)
        try:
            with c.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
        finally:
            c.close()
    except Exception:
        pass


@pytest.fixture(scope="module")
def manage(target: tuple[str, int], django_db: str,
           tmp_path_factory: pytest.TempPathFactory):
    """manage(*args) runs ``manage.py args`` and returns its stdout; it fails the test, with the
    output and the last SQL statements sent, when the exit code is not ``expect_rc``."""
    logs = tmp_path_factory.mktemp("django-sql")
    counter = iter(range(1000))

    def run(*args: str, expect_rc: int = 0, env: dict | None = None) -> str:
        sql_log = logs / f"{next(counter):02d}-{re.sub(r'[^a-z0-9]+', '_', '_'.join(args).lower())[:60]}.log"
        full_env = dict(os.environ)
        full_env.update({
            "DJANGO_SETTINGS_MODULE": "djproject.settings",
            "EMBEDB_DJANGO_HOST": target[0],
            "EMBEDB_DJANGO_PORT": str(target[1]),
            "EMBEDB_DJANGO_DB": django_db,
            "EMBEDB_DJANGO_SQL_LOG": str(sql_log),
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONWARNINGS": "ignore",
        })
        full_env.update(env or {})
        run.last_log = sql_log
        try:
            p = subprocess.run([sys.executable, "manage.py", *args], cwd=APP_DIR, env=full_env,
                               capture_output=True, text=True, timeout=STEP_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"manage.py {' '.join(args)} timed out after {STEP_TIMEOUT}s\n"
                        f"{_tail(sql_log)}", pytrace=False)
        if p.returncode != expect_rc:
            pytest.fail(f"manage.py {' '.join(args)} exited {p.returncode} (want {expect_rc})\n"
                        f"--- stdout ---\n{p.stdout[-4000:]}\n--- stderr ---\n{p.stderr[-6000:]}\n"
                        f"{_tail(sql_log)}", pytrace=False)
        return p.stdout

    return run


def _tail(sql_log: Path, n: int = 8) -> str:
    """Every failed statement (``FAILED SQL: ...``) and the last ``n`` log lines."""
    if not sql_log.exists():
        return "--- no SQL logged ---"
    lines = sql_log.read_text(errors="replace").splitlines()
    failed = [line[:3000] for line in lines if line.startswith("shop.failed_sql:")]
    text = f"--- {len(failed)} failed SQL statement(s) ---\n" + "\n".join(failed) + "\n" if failed else ""
    return text + f"--- last {min(n, len(lines))} SQL log lines ({sql_log}) ---\n" + "\n".join(
        line[:2000] for line in lines[-n:])


def _results(stdout: str) -> dict[str, str]:
    """The ``name=repr`` lines a shop_smoke section prints."""
    out = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition("=")
        if sep and re.fullmatch(r"[a-z0-9_]+", name):
            out[name] = value
    return out


def smoke(manage, section: str) -> dict[str, str]:
    out = manage("shop_smoke", section)
    assert f"SECTION {section} OK" in out, out
    return _results(out)


def _tables(target: tuple[str, int], db: str) -> set[str]:
    c = connect(*target, database=db)
    try:
        with c.cursor() as cur:
            cur.execute("SHOW TABLES")
            return {r[0] for r in cur.fetchall()}
    finally:
        c.close()


def _columns(target: tuple[str, int], db: str, table: str) -> dict[str, str]:
    c = connect(*target, database=db)
    try:
        with c.cursor() as cur:
            cur.execute(f"SHOW COLUMNS FROM `{table}`")
            return {r[0]: r[1].lower() for r in cur.fetchall()}
    finally:
        c.close()


# -- 1. check -------------------------------------------------------------------------------------

def test_check(manage):
    out = manage("check", "--database", "default")
    assert "System check identified no issues" in out, out
    out = manage("makemigrations", "--check", "--dry-run")
    assert "No changes detected" in out, out


# -- 2. migrate -----------------------------------------------------------------------------------

def test_migrate(manage, target, django_db):
    out = manage("migrate", "--noinput")
    for m in ("contenttypes.0001_initial", "auth.0012_alter_user_first_name_max_length",
              "admin.0003_logentry_add_action_flag_choices", "sessions.0001_initial",
              "shop.0001_initial", "shop.0002_product_stock_and_more"):
        assert re.search(rf"Applying {re.escape(m)}\.\.\. OK", out), out
    assert CONTRIB_TABLES | SHOP_TABLES <= _tables(target, django_db)
    cols = _columns(target, django_db, "shop_product")
    assert set(cols) == {"id", "category_id", "name", "price", "attrs", "active", "status", "stock",
                         "created_at"}, cols
    assert cols["price"] == "decimal(10,2)"
    assert cols["name"] == "varchar(200)"
    assert "comment" in _columns(target, django_db, "shop_order")
    out = manage("showmigrations", "shop")
    assert "[X] 0001_initial" in out and "[X] 0002_product_stock_and_more" in out, out
    out = manage("migrate", "--noinput")
    assert "No migrations to apply." in out, out


# -- 3. ORM ---------------------------------------------------------------------------------------

def test_orm_crud(manage):
    r = smoke(manage, "crud")
    assert r["price"] == "Decimal('19.99')"
    assert r["json_key_exact"] == "['Dune', 'Yo-yo']"
    assert r["json_key_gte"] == "['Dune']"
    assert r["json_contains"] == "['Emma']"
    assert r["updated_price"] == "Decimal('21.00')"
    assert r["count_after_delete"] == "3"


def test_orm_relations(manage):
    r = smoke(manage, "relations")
    assert r["m2m_rows"] == "5"
    assert r["kite_tags_after_remove"] == "['kids']"
    assert r["select_related"] == "[('Dune', 'books'), ('Dune', 'books'), ('Kite', 'toys')]"
    assert r["prefetch_related"] == (
        "[('books', [('Dune', ['classic', 'scifi']), ('Emma', [])]), ('toys', [('Kite', ['kids'])])]")


def test_orm_aggregates(manage):
    r = smoke(manage, "aggregates")
    assert r["annotate_count"] == "[('books', 3), ('empty', 0), ('toys', 1)]"
    assert r["aggregate_sum"] == "Decimal('42.75')"
    assert r["aggregate_count"] == "4"
    assert r["annotate_sum_orders"] == "[('a', 4), ('d', 2)]"


def test_orm_nested_atomic(manage):
    r = smoke(manage, "atomic")
    assert r["nested_survivors"] == "['inner-kept', 'outer-after', 'outer-before']"
    assert r["outer_rollback_count"] == "3"
    assert r["integrity_error"] == "True"
    assert r["on_commit"] == "['outer']"


def test_orm_bulk_update_delete(manage):
    r = smoke(manage, "bulk")
    assert r["bulk_count"] == "100"
    assert r["update_count"] == "10"
    assert r["cascade_delete_total"] == "61"
    assert r["after_cascade"] == "(50, 0, 0, 1)"
    assert r["left"] == "25"


def test_contrib_apps(manage):
    r = smoke(manage, "contrib")
    assert r["check_password"] == "True"
    assert r["has_perm"] == "True"
    assert r["shop_permissions"] == "16"
    assert r["session_load"] == "{'cart': [1, 2, 3]}"
    out = manage("createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com",
                 env={"DJANGO_SUPERUSER_PASSWORD": "pw-for-tests"})
    assert "Superuser created successfully." in out, out
    out = manage("shell", "-c",
                 "from django.contrib.auth.models import User; u = User.objects.get(username='admin'); "
                 "print('SUPER', u.is_superuser, u.check_password('pw-for-tests'))")
    assert "SUPER True True" in out, out


# -- 4. inspectdb ---------------------------------------------------------------------------------

def test_inspectdb(manage):
    out = manage("inspectdb", *sorted(SHOP_TABLES))
    for line in (
        "class ShopCategory(models.Model):",
        "class ShopProduct(models.Model):",
        "class ShopProductTags(models.Model):",
        "class ShopOrder(models.Model):",
        "class ShopTag(models.Model):",
        "name = models.CharField(unique=True, max_length=100)",
        "category = models.ForeignKey(ShopCategory, models.DO_NOTHING)",
        "name = models.CharField(max_length=200)",
        "price = models.DecimalField(max_digits=10, decimal_places=2)",
        "attrs = models.JSONField()",
        "stock = models.IntegerField()",
        "created_at = models.DateTimeField()",
        "product = models.ForeignKey('ShopProduct', models.DO_NOTHING)",
        "quantity = models.PositiveIntegerField()",
        "db_table = 'shop_product'",
        "unique_together = (('product', 'tag'),)",
    ):
        assert line in out, f"{line!r} not in inspectdb output:\n{out}\n{_tail(manage.last_log)}"
    assert re.search(r"active = models\.(BooleanField|IntegerField)\(\)", out), out
    assert re.search(r"comment = models\.TextField\(\)", out), out
    out = manage("inspectdb")
    for t in ("auth_user", "django_migrations", "django_session", "shop_product_tags"):
        assert f"db_table = '{t}'" in out, out


# -- 5. migrating back and forth ------------------------------------------------------------------

def test_migrate_back_and_forth(manage, target, django_db):
    out = manage("migrate", "shop", "0001", "--noinput")
    assert re.search(r"Unapplying shop\.0002_product_stock_and_more\.\.\. OK", out), out
    cols = _columns(target, django_db, "shop_product")
    assert "stock" not in cols and cols["name"] == "varchar(100)", cols
    order_cols = _columns(target, django_db, "shop_order")
    assert "note" in order_cols and "comment" not in order_cols, order_cols
    out = manage("showmigrations", "shop")
    assert "[X] 0001_initial" in out and "[ ] 0002_product_stock_and_more" in out, out

    out = manage("migrate", "shop", "zero", "--noinput")
    assert re.search(r"Unapplying shop\.0001_initial\.\.\. OK", out), out
    tables = _tables(target, django_db)
    assert not (SHOP_TABLES & tables), tables
    assert CONTRIB_TABLES <= tables, tables

    out = manage("migrate", "--noinput")
    assert re.search(r"Applying shop\.0001_initial\.\.\. OK", out), out
    assert re.search(r"Applying shop\.0002_product_stock_and_more\.\.\. OK", out), out
    assert SHOP_TABLES <= _tables(target, django_db)
    r = smoke(manage, "crud")
    assert r["count_after_delete"] == "3"
