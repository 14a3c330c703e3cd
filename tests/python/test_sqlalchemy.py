"""embedb through SQLAlchemy 2.x with the pymysql driver.

SQLAlchemy's MySQL dialect is one of the most common ways applications talk to
MySQL/TiDB, and it leans on a fair amount of server behaviour:

* on connect it runs ``SELECT VERSION()``/``@@version``, ``SELECT DATABASE()``,
  ``@@transaction_isolation``, ``@@sql_mode``, ``@@lower_case_table_names``,
  ``SHOW VARIABLES LIKE ...`` and ``SET NAMES``;
* ``has_table()`` runs ``DESCRIBE `db`.`t``` and expects error 1146 when the
  table is missing; reflection parses ``SHOW CREATE TABLE``; table names come
  from ``SHOW FULL TABLES FROM `db```;
* the pymysql dialect connects with ``CLIENT_FOUND_ROWS``, so an UPDATE's
  rowcount is the number of *matched* rows, not of changed rows;
* ``inserted_primary_key`` comes from the OK packet's last-insert-id;
* duplicate keys must surface as ``IntegrityError`` (error 1062, SQLSTATE 23000).

The expectations are MySQL 8 / TiDB behaviour. Fixtures are in conftest.py.
"""

from __future__ import annotations

import datetime
import decimal
from typing import Iterator, Optional

import pytest

sa = pytest.importorskip("sqlalchemy", minversion="2.0",
                         reason="SQLAlchemy 2.x is not installed (pip install sqlalchemy)")

from sqlalchemy import (  # noqa: E402
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    delete,
    func,
    inspect,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402


def _url(server: tuple[str, int], database: str) -> str:
    host, port = server
    return f"mysql+pymysql://root@{host}:{port}/{database}?charset=utf8mb4"


@pytest.fixture
def engine(embedb_server: tuple[str, int], db: str) -> Iterator[Engine]:
    eng = sa.create_engine(_url(embedb_server, db), pool_pre_ping=True,
                           connect_args={"connect_timeout": 10, "read_timeout": 60,
                                         "write_timeout": 60})
    try:
        yield eng
    finally:
        eng.dispose()


def make_items(metadata: MetaData) -> Table:
    return Table(
        "items", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("name", String(50), nullable=False, unique=True),
        Column("body", Text),
        Column("score", Float),
        Column("price", Numeric(10, 2)),
        Column("active", Boolean),
        Column("created", DateTime),
        Column("meta", JSON),
        Index("ix_items_score", "score"),
    )


@pytest.fixture
def items(engine: Engine) -> Table:
    md = MetaData()
    t = make_items(md)
    md.create_all(engine)
    return t


ROW_A = dict(name="alpha", body="first 'row' with \\ and ünïcødé", score=1.5,
             price=decimal.Decimal("12.34"), active=True,
             created=datetime.datetime(2024, 1, 2, 3, 4, 5), meta={"tags": ["x", "y"], "n": 1})
ROW_B = dict(name="beta", body=None, score=-0.25, price=decimal.Decimal("-7.00"), active=False,
             created=datetime.datetime(1999, 12, 31, 23, 59, 59), meta=None)
ROW_C = dict(name="gamma", body="", score=100.0, price=decimal.Decimal("0.01"), active=True,
             created=None, meta={"nested": {"a": [1, 2, 3]}})


def _insert_rows(engine: Engine, items: Table, rows: list[dict]) -> list[int]:
    ids = []
    with engine.begin() as c:
        for row in rows:
            r = c.execute(insert(items).values(**row))
            ids.append(r.inserted_primary_key[0])
    return ids


# ---------------------------------------------------------------------------
# connecting
# ---------------------------------------------------------------------------


def test_engine_connect_and_dialect_probes(engine: Engine, db: str) -> None:
    with engine.connect() as c:
        assert c.execute(text("SELECT 1")).scalar_one() == 1
        version = c.execute(text("SELECT VERSION()")).scalar_one()
        assert isinstance(version, str) and version.startswith("8.0.11-TiDB-")
        assert c.execute(text("SELECT DATABASE()")).scalar_one() == db
        iso = c.execute(text("SELECT @@transaction_isolation")).scalar_one()
        assert iso in ("REPEATABLE-READ", "READ-COMMITTED")
        sql_mode = c.execute(text("SELECT @@sql_mode")).scalar_one()
        assert isinstance(sql_mode, str)
        lctn = c.execute(text("SELECT @@lower_case_table_names")).scalar_one()
        assert int(lctn) in (0, 1, 2)
        c.execute(text("SET NAMES utf8mb4"))
        assert c.execute(text("SELECT 'ünïcødé ✓'")).scalar_one() == "ünïcødé ✓"
    # what the dialect concluded from those probes
    d = engine.dialect
    assert d.server_version_info[:3] == (8, 0, 11)
    assert d.is_mariadb is False
    assert d.default_schema_name == db
    assert d._server_ansiquotes is False  # ANSI_QUOTES must not be in sql_mode
    assert d.get_isolation_level(engine.raw_connection().dbapi_connection) in (
        "REPEATABLE READ", "READ COMMITTED")


def test_isolation_level_execution_option(engine: Engine) -> None:
    # SQLAlchemy runs SET SESSION TRANSACTION ISOLATION LEVEL ... and reads it back
    with engine.connect().execution_options(isolation_level="READ COMMITTED") as c:
        assert c.get_isolation_level() == "READ COMMITTED"
        assert c.execute(text("SELECT 1")).scalar_one() == 1
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        assert c.execute(text("SELECT @@autocommit")).scalar_one() == 1


# ---------------------------------------------------------------------------
# DDL + Core DML
# ---------------------------------------------------------------------------


def test_create_all_and_has_table(engine: Engine, items: Table) -> None:
    insp = inspect(engine)
    assert insp.has_table("items") is True
    assert insp.has_table("no_such_table") is False
    assert "items" in insp.get_table_names()
    # create_all is idempotent (checks has_table first, so no second CREATE)
    items.metadata.create_all(engine)
    items.metadata.drop_all(engine)
    assert inspect(engine).has_table("items") is False


def test_describe_missing_table_is_1146(engine: Engine) -> None:
    # has_table() relies on exactly this error
    with engine.connect() as c:
        with pytest.raises(sa.exc.ProgrammingError) as info:
            c.exec_driver_sql("DESCRIBE `no_such_table`")
    assert info.value.orig.args[0] == 1146


def test_insert_returns_primary_key_and_round_trips(engine: Engine, items: Table) -> None:
    ids = _insert_rows(engine, items, [ROW_A, ROW_B, ROW_C])
    assert ids == [1, 2, 3]
    with engine.connect() as c:
        rows = c.execute(select(items).order_by(items.c.id)).mappings().all()
    assert len(rows) == 3
    for got, want, want_id in zip(rows, [ROW_A, ROW_B, ROW_C], ids):
        assert got["id"] == want_id
        assert got["name"] == want["name"]
        assert got["body"] == want["body"]
        if want["score"] is None:
            assert got["score"] is None
        else:
            assert got["score"] == pytest.approx(want["score"])
        assert got["price"] == want["price"]
        assert isinstance(got["price"], decimal.Decimal)
        assert got["active"] is want["active"]
        assert got["created"] == want["created"]
        assert got["meta"] == want["meta"]


def test_executemany_insert_and_lastrowid(engine: Engine, items: Table) -> None:
    with engine.begin() as c:
        r = c.execute(insert(items), [dict(name=f"n{i}", score=float(i)) for i in range(5)])
        assert r.rowcount == 5
        r = c.execute(insert(items).values(name="after"))
        assert r.inserted_primary_key[0] == 6
        assert c.execute(text("SELECT LAST_INSERT_ID()")).scalar_one() == 6
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(items)).scalar_one() == 6


def test_select_where_order_limit(engine: Engine, items: Table) -> None:
    _insert_rows(engine, items, [ROW_A, ROW_B, ROW_C])
    with engine.connect() as c:
        names = c.execute(
            select(items.c.name).where(items.c.score > 0).order_by(items.c.score.desc()).limit(1)
        ).scalars().all()
        assert names == ["gamma"]
        names = c.execute(
            select(items.c.name).order_by(items.c.name).limit(2).offset(1)).scalars().all()
        assert names == ["beta", "gamma"]
        # a bound parameter (pymysql sends 1); the `true` literal is covered below
        names = c.execute(select(items.c.name).where(items.c.active == sa.literal(True))
                          .order_by(items.c.id)).scalars().all()
        assert names == ["alpha", "gamma"]
        names = c.execute(select(items.c.name).where(items.c.body.is_(None))).scalars().all()
        assert names == ["beta"]
        names = c.execute(select(items.c.name).where(items.c.name.in_(["alpha", "gamma", "zzz"]))
                          .order_by(items.c.name)).scalars().all()
        assert names == ["alpha", "gamma"]
        names = c.execute(select(items.c.name).where(items.c.name.like("%mm%"))).scalars().all()
        assert names == ["gamma"]
        total = c.execute(select(func.sum(items.c.price))).scalar_one()
        assert total == decimal.Decimal("5.35")
        # bound parameters of every column type in a WHERE clause
        row = c.execute(select(items.c.id).where(
            items.c.price == decimal.Decimal("12.34"),
            items.c.created == datetime.datetime(2024, 1, 2, 3, 4, 5),
            items.c.active == sa.literal(True),
        )).scalar_one()
        assert row == 1


def test_update_rowcount_is_matched_rows(engine: Engine, items: Table) -> None:
    _insert_rows(engine, items, [ROW_A, ROW_B, ROW_C])
    with engine.begin() as c:
        r = c.execute(update(items).where(items.c.name.in_(["alpha", "gamma"])).values(score=1.5))
        # alpha already has score 1.5, gamma changes: 2 matched, 1 changed.
        # SQLAlchemy's pymysql dialect sets CLIENT_FOUND_ROWS -> matched rows.
        assert r.rowcount == 2
        r = c.execute(update(items).where(items.c.name == "nobody").values(score=0))
        assert r.rowcount == 0
        r = c.execute(update(items).where(items.c.name == "beta").values(body="b"))
        assert r.rowcount == 1
    with engine.connect() as c:
        assert c.execute(select(items.c.score).where(items.c.name == "gamma")).scalar_one() == 1.5
        assert c.execute(select(items.c.body).where(items.c.name == "beta")).scalar_one() == "b"


def test_delete(engine: Engine, items: Table) -> None:
    _insert_rows(engine, items, [ROW_A, ROW_B, ROW_C])
    with engine.begin() as c:
        r = c.execute(delete(items).where(items.c.score < 10))
        assert r.rowcount == 2
        r = c.execute(delete(items).where(items.c.name == "alpha"))
        assert r.rowcount == 0
    with engine.connect() as c:
        assert c.execute(select(items.c.name)).scalars().all() == ["gamma"]


def test_boolean_predicates(engine: Engine, items: Table) -> None:
    """`col IS true`, `col = true`, `IS NOT false`: what SQLAlchemy emits for
    ``col.is_(True)``, ``col == True``, ``col.is_not(False)``, ``~col`` on a
    Boolean (TINYINT(1)) column. MySQL evaluates TRUE/FALSE as 1/0."""
    _insert_rows(engine, items, [ROW_A, ROW_B, ROW_C])
    with engine.connect() as c:
        def names(where) -> list[str]:
            return c.execute(select(items.c.name).where(where)
                             .order_by(items.c.id)).scalars().all()

        assert names(items.c.active.is_(True)) == ["alpha", "gamma"]
        assert names(items.c.active.is_(False)) == ["beta"]
        assert names(items.c.active.is_not(False)) == ["alpha", "gamma"]
        assert names(items.c.active == True) == ["alpha", "gamma"]  # noqa: E712
        assert names(items.c.active == False) == ["beta"]  # noqa: E712
        assert names(items.c.active) == ["alpha", "gamma"]
        assert names(~items.c.active) == ["beta"]
        assert c.execute(text("SELECT 1 IS TRUE, 0 IS FALSE, NULL IS NOT TRUE, 2 = TRUE")).one() \
            == (1, 1, 1, 0)


def test_json_path_expression(engine: Engine, items: Table) -> None:
    _insert_rows(engine, items, [ROW_A, ROW_B, ROW_C])
    with engine.connect() as c:
        # compiles to JSON_EXTRACT(meta, '$."n"')
        got = c.execute(select(items.c.meta["n"].as_integer())
                        .where(items.c.name == "alpha")).scalar_one()
        assert got == 1


# ---------------------------------------------------------------------------
# transactions and errors
# ---------------------------------------------------------------------------


def test_begin_commits(engine: Engine, items: Table) -> None:
    with engine.begin() as c:
        c.execute(insert(items).values(name="committed"))
    with engine.connect() as c:
        assert c.execute(select(items.c.name)).scalars().all() == ["committed"]


def test_begin_rolls_back_on_exception(engine: Engine, items: Table) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        with engine.begin() as c:
            c.execute(insert(items).values(name="doomed1"))
            c.execute(insert(items), [dict(name="doomed2"), dict(name="doomed3")])
            # visible inside the transaction
            assert c.execute(select(func.count()).select_from(items)).scalar_one() == 3
            raise Boom()
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(items)).scalar_one() == 0


def test_uncommitted_rows_invisible_to_other_connection(engine: Engine, items: Table) -> None:
    with engine.connect() as c1, engine.connect() as c2:
        tx = c1.begin()
        c1.execute(insert(items).values(name="pending"))
        assert c2.execute(select(func.count()).select_from(items)).scalar_one() == 0
        c2.rollback()
        tx.commit()
        assert c2.execute(select(func.count()).select_from(items)).scalar_one() == 1


def test_explicit_rollback(engine: Engine, items: Table) -> None:
    with engine.connect() as c:
        c.execute(insert(items).values(name="kept"))
        c.commit()
        c.execute(insert(items).values(name="dropped"))
        c.execute(update(items).values(score=9.0))
        c.rollback()
        rows = c.execute(select(items.c.name, items.c.score)).all()
    assert rows == [("kept", None)]


def test_duplicate_key_is_integrity_error(engine: Engine, items: Table) -> None:
    _insert_rows(engine, items, [ROW_A])
    with pytest.raises(sa.exc.IntegrityError) as info:
        with engine.begin() as c:
            c.execute(insert(items).values(name="alpha"))  # UNIQUE(name)
    assert info.value.orig.args[0] == 1062
    with pytest.raises(sa.exc.IntegrityError) as info:
        with engine.begin() as c:
            c.execute(insert(items).values(id=1, name="other"))  # PRIMARY KEY
    assert info.value.orig.args[0] == 1062
    # the failed transactions left nothing behind and the pool still works
    with engine.connect() as c:
        assert c.execute(select(items.c.id, items.c.name)).all() == [(1, "alpha")]


def test_not_null_violation_is_integrity_error(engine: Engine, items: Table) -> None:
    with pytest.raises(sa.exc.IntegrityError) as info:
        with engine.begin() as c:
            c.execute(insert(items).values(name=None))
    assert info.value.orig.args[0] == 1048  # Column 'name' cannot be null


def test_missing_table_is_programming_error(engine: Engine) -> None:
    with engine.connect() as c:
        with pytest.raises(sa.exc.ProgrammingError) as info:
            c.execute(text("SELECT * FROM no_such_table"))
        assert info.value.orig.args[0] == 1146
        # the connection is still usable
        assert c.execute(text("SELECT 2")).scalar_one() == 2


# ---------------------------------------------------------------------------
# ORM
# ---------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class Doc(Base):
    __tablename__ = "docs"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(50))
    body: Mapped[Optional[str]] = mapped_column(Text)
    rating: Mapped[Optional[float]] = mapped_column(Float)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[Optional[datetime.datetime]] = mapped_column(DateTime)


def test_orm_session_crud(engine: Engine) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        d1 = Doc(title="one", body="b1", rating=4.5, published=True,
                 created=datetime.datetime(2023, 5, 6, 7, 8, 9))
        d2 = Doc(title="two", rating=2.0)
        d3 = Doc(title="three", rating=3.0, published=True)
        s.add_all([d1, d2, d3])
        s.commit()
        assert (d1.id, d2.id, d3.id) == (1, 2, 3)

    with Session(engine) as s:
        got = s.scalars(select(Doc).where(Doc.rating > 2.5)
                        .order_by(Doc.rating.desc()).limit(5)).all()
        assert [d.title for d in got] == ["one", "three"]
        assert got[0].created == datetime.datetime(2023, 5, 6, 7, 8, 9)
        one = s.get(Doc, 2)
        assert one is not None and one.title == "two" and one.published is False
        one.title = "two (edited)"
        s.delete(s.get(Doc, 3))
        s.commit()

    with Session(engine) as s:
        assert [d.title for d in s.scalars(select(Doc).order_by(Doc.id))] == ["one", "two (edited)"]
        # rollback of a session discards pending work
        s.add(Doc(title="discarded"))
        s.flush()
        s.rollback()
        assert s.scalar(select(func.count()).select_from(Doc)) == 2


# ---------------------------------------------------------------------------
# reflection
# ---------------------------------------------------------------------------


def test_inspector(engine: Engine, items: Table, db: str) -> None:
    insp = inspect(engine)
    assert insp.get_table_names() == ["items"]
    assert db in insp.get_schema_names()

    cols = {c["name"]: c for c in insp.get_columns("items")}
    assert list(cols) == ["id", "name", "body", "score", "price", "active", "created", "meta"]
    assert isinstance(cols["id"]["type"], sa.Integer)
    assert cols["id"]["nullable"] is False
    assert cols["id"]["autoincrement"] is True
    assert isinstance(cols["name"]["type"], sa.String) and cols["name"]["type"].length == 50
    assert cols["name"]["nullable"] is False
    assert isinstance(cols["body"]["type"], sa.Text)
    assert isinstance(cols["score"]["type"], sa.Float)
    assert isinstance(cols["price"]["type"], sa.Numeric)
    assert (cols["price"]["type"].precision, cols["price"]["type"].scale) == (10, 2)
    # MySQL's BOOL is TINYINT(1)
    assert isinstance(cols["active"]["type"], sa.Integer)
    assert getattr(cols["active"]["type"], "display_width", None) == 1
    assert isinstance(cols["created"]["type"], sa.DateTime)
    assert isinstance(cols["meta"]["type"], sa.JSON)
    for name in ("body", "score", "price", "active", "created", "meta"):
        assert cols[name]["nullable"] is True, name
        assert cols[name]["default"] is None, name

    assert insp.get_pk_constraint("items")["constrained_columns"] == ["id"]

    indexes = {ix["name"]: ix for ix in insp.get_indexes("items")}
    assert indexes["ix_items_score"]["column_names"] == ["score"]
    assert indexes["ix_items_score"]["unique"] is False
    uniques = insp.get_unique_constraints("items")
    unique_cols = [u["column_names"] for u in uniques] + [
        ix["column_names"] for ix in indexes.values() if ix["unique"]]
    assert ["name"] in unique_cols
    assert insp.get_foreign_keys("items") == []


def test_autoload_table(engine: Engine, items: Table) -> None:
    _insert_rows(engine, items, [ROW_A])
    reflected = Table("items", MetaData(), autoload_with=engine)
    assert [c.name for c in reflected.columns] == [c.name for c in items.columns]
    assert [c.name for c in reflected.primary_key.columns] == ["id"]
    assert reflected.c.id.autoincrement is True
    assert reflected.c.name.nullable is False
    assert reflected.c.price.type.precision == 10 and reflected.c.price.type.scale == 2
    assert {ix.name for ix in reflected.indexes} >= {"ix_items_score"}
    # the reflected table is usable for DML
    with engine.begin() as c:
        r = c.execute(insert(reflected).values(name="via reflection", price=decimal.Decimal("1.10")))
        assert r.inserted_primary_key[0] == 2
        got = c.execute(select(reflected.c.name, reflected.c.price)
                        .where(reflected.c.id == 2)).one()
        assert got == ("via reflection", decimal.Decimal("1.10"))


def test_reflect_whole_metadata(engine: Engine, items: Table) -> None:
    with engine.begin() as c:
        c.execute(text("CREATE TABLE other (k VARCHAR(20) PRIMARY KEY, v INT NOT NULL DEFAULT 7)"))
    md = MetaData()
    md.reflect(bind=engine)
    assert set(md.tables) == {"items", "other"}
    other = md.tables["other"]
    assert [c.name for c in other.primary_key.columns] == ["k"]
    assert other.c.v.nullable is False
    assert str(other.c.v.server_default.arg) in ("'7'", "7")
