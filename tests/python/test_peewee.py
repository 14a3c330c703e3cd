"""Peewee (pymysql driver) against embedb.

One flow on a database of its own on the shared server; the tests run in file order and share its
tables, each one a step (a failing step does not stop the later ones):

* ``create_tables`` (AUTO_INCREMENT keys, VARCHAR / TEXT / BOOL / NUMERIC / DATETIME columns,
  foreign keys with ON DELETE CASCADE, single and multi-column (unique) indexes, a
  ManyToManyField's through table) and ``drop_tables``;
* CRUD: ``create`` / ``insert_many`` / ``get`` / ``get_or_none`` / ``get_or_create``, update and
  delete queries, ``on_conflict`` (ON DUPLICATE KEY UPDATE, INSERT IGNORE), pagination;
* foreign keys and joins: ``join`` / ``switch`` / LEFT OUTER with aggregates, ``prefetch``,
  back-references, many-to-many, subqueries, FK violations and cascading deletes;
* transactions: ``db.atomic()`` commit and rollback, ``atomic()`` nested in ``atomic()``
  (SAVEPOINT / ROLLBACK TO SAVEPOINT / RELEASE SAVEPOINT), an explicit savepoint rollback,
  ``SELECT ... FOR UPDATE``;
* introspection: ``get_tables`` / ``get_columns`` / ``get_indexes`` / ``get_foreign_keys`` /
  ``get_primary_keys`` and ``playhouse.reflection.Introspector`` (generated models query the data);
* ``playhouse.migrate.MySQLMigrator``: add_column (nullable, NOT NULL with a default, a foreign
  key), rename_column (plain and a foreign key column), drop_column, add_index / drop_index,
  alter_column_type, add_not_null / drop_not_null, add / drop column default, rename_table.

Peewee logs every statement on the ``peewee`` logger (DEBUG), which pytest shows for a failing
step. Skipped when peewee is not installed (.ci/run installs it into the venv).
"""

from __future__ import annotations

import datetime
import decimal
import logging
import re
from typing import Iterator

import pytest

peewee = pytest.importorskip("peewee")
from peewee import (  # noqa: E402
    JOIN, BooleanField, CharField, DateTimeField, DecimalField, ForeignKeyField, IntegerField,
    BigIntegerField, IntegrityError, ManyToManyField, Model, MySQLDatabase, TextField, fn, prefetch,
)
from playhouse.migrate import MySQLMigrator, migrate  # noqa: E402
from playhouse.reflection import Introspector  # noqa: E402

from conftest import connect  # noqa: E402

logging.getLogger("peewee").setLevel(logging.DEBUG)

DB_NAME = "pytest_peewee_flow"
database = MySQLDatabase(None)


class BaseModel(Model):
    class Meta:
        database = database


class Author(BaseModel):
    name = CharField(max_length=100)
    email = CharField(max_length=128, unique=True)
    active = BooleanField(default=True)
    born = IntegerField(null=True)
    joined = DateTimeField(default=datetime.datetime(2024, 1, 2, 3, 4, 5))


class Tag(BaseModel):
    label = CharField(max_length=32, unique=True)


class Book(BaseModel):
    title = CharField(max_length=200, index=True)
    summary = TextField(null=True)
    pages = IntegerField(default=0)
    price = DecimalField(max_digits=8, decimal_places=2, null=True)
    author = ForeignKeyField(Author, backref="books", on_delete="CASCADE")
    tags = ManyToManyField(Tag, backref="books")

    class Meta:
        indexes = ((("author", "title"), True),)  # unique (author_id, title)


BookTag = Book.tags.get_through_model()
MODELS = [Author, Tag, Book, BookTag]


@pytest.fixture(scope="module")
def pw(embedb_server: tuple[str, int]) -> Iterator[MySQLDatabase]:
    """The peewee database bound to a fresh database on the shared server."""
    host, port = embedb_server
    c = connect(host, port)
    try:
        with c.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
            cur.execute(f"CREATE DATABASE `{DB_NAME}`")
    finally:
        c.close()
    database.init(DB_NAME, host=host, port=port, user="root", password="", connect_timeout=10,
                  read_timeout=60, write_timeout=60)
    database.connect()
    try:
        yield database
    finally:
        database.close()
        c = connect(host, port)
        try:
            with c.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{DB_NAME}`")
        finally:
            c.close()


def columns(pw: MySQLDatabase, table: str) -> dict:
    return {c.name: c for c in pw.get_columns(table)}


def indexes(pw: MySQLDatabase, table: str) -> dict:
    return {i.name: i for i in pw.get_indexes(table)}


def unquote(default):
    """MariaDB reports a string default quoted ('x'), MySQL as it is (x)."""
    if isinstance(default, str):
        return re.sub(r"^'(.*)'$", r"\1", default)
    return default


# --- schema --------------------------------------------------------------------------------------

def test_create_tables(pw: MySQLDatabase) -> None:
    pw.create_tables(MODELS)
    assert pw.get_tables() == ["author", "book", "book_tag_through", "tag"]
    assert pw.table_exists("book")
    assert Author.table_exists()
    # safe=True (the default) is CREATE TABLE IF NOT EXISTS: a second call is a no-op
    pw.create_tables(MODELS)


# --- CRUD ----------------------------------------------------------------------------------------

def test_create_and_get(pw: MySQLDatabase) -> None:
    ann = Author.create(name="Ann", email="ann@example.com", born=1970)
    assert isinstance(ann.id, int) and ann.id > 0
    Author.insert_many([
        {"name": "Ben", "email": "ben@example.com", "born": 1980, "active": False},
        {"name": "Cat", "email": "cat@example.com"},
    ]).execute()
    assert [(a.name, a.active, a.born) for a in Author.select().order_by(Author.id)] == [
        ("Ann", True, 1970), ("Ben", False, 1980), ("Cat", True, None)]
    cat = Author.get(Author.email == "cat@example.com")
    assert cat.joined == datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert Author.get_by_id(ann.id).name == "Ann"
    assert Author.get_or_none(Author.email == "zed@example.com") is None
    with pytest.raises(Author.DoesNotExist):
        Author.get(Author.name == "Zed")
    dan, created = Author.get_or_create(email="dan@example.com", defaults={"name": "Dan"})
    assert created
    again, created = Author.get_or_create(email="dan@example.com", defaults={"name": "Dan"})
    assert not created and again.id == dan.id


def test_books_crud(pw: MySQLDatabase) -> None:
    ann = Author.get(Author.name == "Ann")
    ben = Author.get(Author.name == "Ben")
    cat = Author.get(Author.name == "Cat")
    Book.insert_many([
        {"title": "Alpha", "pages": 100, "price": decimal.Decimal("9.99"), "author": ann, "summary": "first"},
        {"title": "Beta", "pages": 250, "price": decimal.Decimal("19.50"), "author": ann},
        {"title": "Gamma", "pages": 80, "author": ben},
    ]).execute()
    delta = Book.create(title="Delta", author=cat, summary="it's \"quoted\"\nand multi-line")
    back = Book.get_by_id(delta.id)
    assert (back.pages, back.price, back.summary) == (0, None, "it's \"quoted\"\nand multi-line")
    assert Book.get(Book.title == "Alpha").price == decimal.Decimal("9.99")
    assert Book.select().count() == 4
    assert [b.title for b in Book.select().where(Book.pages > 90).order_by(Book.pages.desc())] == ["Beta", "Alpha"]
    assert [b.title for b in Book.select().where(Book.title.in_(["Gamma", "Alpha", "Nope"])).order_by(Book.title)] == [
        "Alpha", "Gamma"]
    assert [b.title for b in Book.select().order_by(Book.pages.desc(), Book.id).paginate(2, 2)] == ["Gamma", "Delta"]
    assert [b.title for b in Book.select().where(Book.price.is_null() | Book.title.startswith("A")).order_by(Book.id)] == [
        "Alpha", "Gamma", "Delta"]
    assert [b.title for b in Book.select().where(Book.pages.between(80, 100) & (Book.title != "Gamma"))] == ["Alpha"]
    assert [b.title for b in Book.select().where(Book.title % "%ELT%")] == []  # LIKE BINARY
    assert [b.title for b in Book.select().where(Book.title % "%elt%")] == ["Delta"]
    # contains() is ILIKE, sent as plain LIKE: case-insensitive only under a _ci collation (MySQL's
    # default); embedb, like TiDB, defaults to utf8mb4_bin, so only the exact case is asserted here
    assert [b.title for b in Book.select().where(Book.title.contains("elt"))] == ["Delta"]


def test_update_and_delete(pw: MySQLDatabase) -> None:
    n = Book.update(price=decimal.Decimal("5.00"), summary="cheap").where(Book.title == "Gamma").execute()
    assert n == 1
    assert Book.update(price=1).where(Book.title == "Nope").execute() == 0
    Book.update(pages=Book.pages + 20).where(Book.title == "Gamma").execute()
    gamma = Book.get(Book.title == "Gamma")
    assert (gamma.pages, gamma.price) == (100, decimal.Decimal("5.00"))
    gamma.pages -= 5
    gamma.save()
    assert Book.get_by_id(gamma.id).pages == 95
    dan = Author.get(Author.name == "Dan")
    assert dan.delete_instance() == 1
    assert Author.delete().where(Author.name == "Nobody").execute() == 0
    assert Author.select().count() == 3


def test_on_conflict(pw: MySQLDatabase) -> None:
    ann_id = Author.get(Author.email == "ann@example.com").id
    (Author.insert(name="Ann B.", email="ann@example.com")
     .on_conflict(preserve=[Author.name]).execute())
    assert Author.get_by_id(ann_id).name == "Ann B."
    (Author.insert(name="Ann C.", email="ann@example.com")
     .on_conflict(update={Author.born: Author.born + 1}).execute())
    assert Author.get_by_id(ann_id).born == 1971
    Author.insert(name="Ignored", email="ben@example.com").on_conflict_ignore().execute()
    assert Author.get(Author.email == "ben@example.com").name == "Ben"
    assert Author.select().count() == 3
    with pytest.raises(IntegrityError):
        Author.create(name="X", email="cat@example.com")


# --- foreign keys and joins -----------------------------------------------------------------------

def test_join_and_aggregate(pw: MySQLDatabase) -> None:
    rows = (Book.select(Book.title, Author.name)
            .join(Author)
            .where(Author.active == True)  # noqa: E712
            .order_by(Author.name, Book.title)
            .tuples())
    assert list(rows) == [("Alpha", "Ann B."), ("Beta", "Ann B."), ("Delta", "Cat")]
    counts = (Author.select(Author.name, fn.COUNT(Book.id).alias("n"), fn.COALESCE(fn.SUM(Book.pages), 0).alias("pages"))
              .join(Book, JOIN.LEFT_OUTER)
              .group_by(Author.id, Author.name)
              .order_by(Author.name)
              .tuples())
    assert [(a, int(n), int(p)) for a, n, p in counts] == [("Ann B.", 2, 350), ("Ben", 1, 95), ("Cat", 1, 0)]
    prolific = (Author.select(Author.name).join(Book).group_by(Author.id, Author.name)
                .having(fn.COUNT(Book.id) > 1))
    assert [a.name for a in prolific] == ["Ann B."]
    big = Book.select(Book.author).where(Book.pages > 200)
    assert [a.name for a in Author.select().where(Author.id.in_(big))] == ["Ann B."]
    # model graph: book.author is populated from the join
    book = Book.select(Book, Author).join(Author).where(Book.title == "Gamma").get()
    assert book.author.name == "Ben"


def test_backref_and_prefetch(pw: MySQLDatabase) -> None:
    ann = Author.get(Author.email == "ann@example.com")
    assert sorted(b.title for b in ann.books) == ["Alpha", "Beta"]
    authors = prefetch(Author.select().order_by(Author.name), Book.select().order_by(Book.title))
    assert [(a.name, [b.title for b in a.books]) for a in authors] == [
        ("Ann B.", ["Alpha", "Beta"]), ("Ben", ["Gamma"]), ("Cat", ["Delta"])]


def test_many_to_many(pw: MySQLDatabase) -> None:
    sf = Tag.create(label="sf")
    classic = Tag.create(label="classic")
    alpha = Book.get(Book.title == "Alpha")
    beta = Book.get(Book.title == "Beta")
    alpha.tags.add(sf)
    beta.tags.add([sf, classic])
    assert sorted(t.label for t in beta.tags) == ["classic", "sf"]
    assert sorted(b.title for b in sf.books) == ["Alpha", "Beta"]
    beta.tags.remove(sf)
    assert [t.label for t in beta.tags] == ["classic"]
    rows = (Tag.select(Tag.label, fn.COUNT(BookTag.id).alias("n"))
            .join(BookTag, JOIN.LEFT_OUTER).group_by(Tag.id, Tag.label).order_by(Tag.label).tuples())
    assert [(t, int(n)) for t, n in rows] == [("classic", 1), ("sf", 1)]


def test_foreign_key_enforced_and_cascade(pw: MySQLDatabase) -> None:
    with pytest.raises(IntegrityError):
        Book.create(title="Orphan", author=999999)
    eve = Author.create(name="Eve", email="eve@example.com")
    book = Book.create(title="Epsilon", author=eve)
    eve.delete_instance()  # ON DELETE CASCADE removes the book
    assert Book.get_or_none(Book.title == "Epsilon") is None


# --- transactions --------------------------------------------------------------------------------

def test_atomic_commit_and_rollback(pw: MySQLDatabase) -> None:
    with pw.atomic():
        fay = Author.create(name="Fay", email="fay@example.com")
        Book.create(title="Zeta", author=fay)
    assert Book.get(Book.title == "Zeta").author.name == "Fay"
    with pytest.raises(RuntimeError):
        with pw.atomic():
            Author.update(name="Changed").where(Author.id == fay.id).execute()
            Book.delete().where(Book.title == "Zeta").execute()
            assert Book.get_or_none(Book.title == "Zeta") is None
            raise RuntimeError("boom")
    assert Author.get_by_id(fay.id).name == "Fay"
    assert Book.get_or_none(Book.title == "Zeta") is not None
    with pw.atomic() as txn:
        Author.update(name="Changed").where(Author.id == fay.id).execute()
        txn.rollback()  # rolls back and begins a new transaction
        Author.update(born=1999).where(Author.id == fay.id).execute()
    fay = Author.get_by_id(fay.id)
    assert (fay.name, fay.born) == ("Fay", 1999)


def test_nested_atomic_savepoints(pw: MySQLDatabase) -> None:
    fay = Author.get(Author.email == "fay@example.com")
    with pw.atomic():
        Author.update(born=1111).where(Author.id == fay.id).execute()
        with pytest.raises(RuntimeError):
            with pw.atomic():  # SAVEPOINT
                Author.update(born=2222).where(Author.id == fay.id).execute()
                Book.create(title="Eta", author=fay)
                assert Author.get_by_id(fay.id).born == 2222
                raise RuntimeError("inner failure")  # ROLLBACK TO SAVEPOINT
        assert Author.get_by_id(fay.id).born == 1111
        assert Book.get_or_none(Book.title == "Eta") is None
        with pw.atomic():  # SAVEPOINT ... RELEASE SAVEPOINT
            Book.create(title="Theta", author=fay)
            with pw.atomic() as sp:
                Book.update(pages=33).where(Book.title == "Theta").execute()
                sp.rollback()  # ROLLBACK TO SAVEPOINT, the savepoint goes on
                Book.update(pages=44).where(Book.title == "Theta").execute()
    assert Author.get_by_id(fay.id).born == 1111
    assert Book.get(Book.title == "Theta").pages == 44
    assert Book.get_or_none(Book.title == "Eta") is None


def test_select_for_update(pw: MySQLDatabase) -> None:
    with pw.atomic():
        fay = Author.select().where(Author.email == "fay@example.com").for_update().get()
        fay.name = "Fay 2"
        fay.save()
    assert Author.get(Author.email == "fay@example.com").name == "Fay 2"


# --- introspection -------------------------------------------------------------------------------

def test_get_columns(pw: MySQLDatabase) -> None:
    cols = columns(pw, "book")
    assert list(cols) == ["id", "title", "summary", "pages", "price", "author_id"]
    assert cols["id"].primary_key and cols["id"].identity and not cols["id"].null
    assert cols["title"].data_type == "varchar" and not cols["title"].null
    assert cols["summary"].data_type == "text" and cols["summary"].null
    assert cols["pages"].data_type == "int" and not cols["pages"].null
    assert cols["price"].data_type == "decimal" and cols["price"].null
    assert cols["author_id"].data_type == "int" and not cols["author_id"].null
    acols = columns(pw, "author")
    assert acols["active"].data_type == "tinyint"
    assert acols["born"].null and acols["born"].default is None
    assert pw.get_primary_keys("book") == ["id"]
    assert pw.get_primary_keys("book_tag_through") == ["id"]


def test_get_indexes(pw: MySQLDatabase) -> None:
    idx = indexes(pw, "book")
    assert idx["PRIMARY"].columns == ["id"] and idx["PRIMARY"].unique
    assert idx["book_title"].columns == ["title"] and not idx["book_title"].unique
    assert idx["book_author_id_title"].columns == ["author_id", "title"] and idx["book_author_id_title"].unique
    aidx = indexes(pw, "author")
    assert aidx["author_email"].columns == ["email"] and aidx["author_email"].unique
    tidx = indexes(pw, "book_tag_through")
    assert any(i.columns == ["book_id", "tag_id"] and i.unique for i in tidx.values()), tidx


def test_get_foreign_keys(pw: MySQLDatabase) -> None:
    fks = pw.get_foreign_keys("book")
    assert [(fk.column, fk.dest_table, fk.dest_column, fk.table) for fk in fks] == [
        ("author_id", "author", "id", "book")]
    assert fks[0].on_delete == "CASCADE"
    through = sorted((fk.column, fk.dest_table, fk.dest_column) for fk in pw.get_foreign_keys("book_tag_through"))
    assert through == [("book_id", "book", "id"), ("tag_id", "tag", "id")]
    assert pw.get_foreign_keys("author") == []


def test_introspector(pw: MySQLDatabase) -> None:
    models = Introspector.from_database(pw).generate_models()
    assert sorted(models) == ["author", "book", "book_tag_through", "tag"]
    book = models["book"]
    fields = book._meta.fields
    assert isinstance(fields["id"], peewee.AutoField)
    assert isinstance(fields["title"], CharField) and fields["title"].max_length == 200
    assert isinstance(fields["summary"], TextField) and fields["summary"].null
    assert isinstance(fields["price"], DecimalField)
    assert isinstance(fields["author"], ForeignKeyField) and fields["author"].rel_model is models["author"]
    assert isinstance(models["author"]._meta.fields["active"], BooleanField)
    assert isinstance(models["author"]._meta.fields["joined"], DateTimeField)
    rows = (book.select(book.title, models["author"].name).join(models["author"])
            .where(book.title.in_(["Alpha", "Gamma"])).order_by(book.title).tuples())
    assert list(rows) == [("Alpha", "Ann B."), ("Gamma", "Ben")]


# --- playhouse.migrate ---------------------------------------------------------------------------

def test_migrate_add_column(pw: MySQLDatabase) -> None:
    m = MySQLMigrator(pw)
    migrate(
        m.add_column("author", "country", CharField(max_length=2, default="DE")),  # NOT NULL: add, fill, SET NOT NULL
        m.add_column("author", "bio", TextField(null=True)),
        m.add_column("book", "editor_id", ForeignKeyField(Author, Author.id, null=True, on_delete="SET NULL")),
    )
    cols = columns(pw, "author")
    assert not cols["country"].null
    assert cols["bio"].null
    assert pw.execute_sql("SELECT country FROM author ORDER BY id").fetchall() == (("DE",),) * 4
    fks = {fk.column: fk for fk in pw.get_foreign_keys("book")}
    assert fks["editor_id"].dest_table == "author"
    with pytest.raises(IntegrityError):
        pw.execute_sql("UPDATE book SET editor_id = 999999 WHERE title = 'Alpha'")


def test_migrate_rename_column(pw: MySQLDatabase) -> None:
    m = MySQLMigrator(pw)
    migrate(m.rename_column("book", "summary", "blurb"))
    cols = columns(pw, "book")
    assert "blurb" in cols and "summary" not in cols
    assert cols["blurb"].data_type == "text" and cols["blurb"].null
    assert pw.execute_sql("SELECT blurb FROM book WHERE title = 'Alpha'").fetchone() == ("first",)
    # a foreign key column: DROP FOREIGN KEY, CHANGE, ADD CONSTRAINT ... FOREIGN KEY
    migrate(m.rename_column("book", "editor_id", "reviewer_id"))
    fks = {fk.column: fk for fk in pw.get_foreign_keys("book")}
    assert "reviewer_id" in fks and "editor_id" not in fks
    with pytest.raises(IntegrityError):
        pw.execute_sql("UPDATE book SET reviewer_id = 999999 WHERE title = 'Alpha'")


def test_migrate_alter_column_type(pw: MySQLDatabase) -> None:
    m = MySQLMigrator(pw)
    migrate(
        m.alter_column_type("author", "born", BigIntegerField(null=True)),
        m.alter_column_type("book", "title", CharField(max_length=300)),
    )
    cols = columns(pw, "author")
    assert cols["born"].data_type == "bigint"
    assert columns(pw, "book")["title"].full_type.lower().startswith("varchar(300)")
    fay = Author.get(Author.email == "fay@example.com")
    pw.execute_sql("UPDATE author SET born = 5000000000 WHERE id = %s", (fay.id,))
    assert pw.execute_sql("SELECT born FROM author WHERE id = %s", (fay.id,)).fetchone() == (5000000000,)
    long = "T" * 250
    pw.execute_sql("UPDATE book SET title = %s WHERE title = 'Delta'", (long,))
    assert pw.execute_sql("SELECT COUNT(*) FROM book WHERE title = %s", (long,)).fetchone() == (1,)


def test_migrate_not_null(pw: MySQLDatabase) -> None:
    m = MySQLMigrator(pw)
    migrate(m.drop_not_null("book", "pages"))
    assert columns(pw, "book")["pages"].null
    pw.execute_sql("UPDATE book SET pages = NULL WHERE title = 'Alpha'")
    pw.execute_sql("UPDATE book SET pages = 1 WHERE pages IS NULL")
    migrate(m.add_not_null("book", "pages"))
    assert not columns(pw, "book")["pages"].null
    with pytest.raises(IntegrityError):
        pw.execute_sql("UPDATE book SET pages = NULL WHERE title = 'Alpha'")


def test_migrate_column_default(pw: MySQLDatabase) -> None:
    m = MySQLMigrator(pw)
    migrate(m.add_column_default("author", "country", "US"))
    assert unquote(columns(pw, "author")["country"].default) == "US"
    pw.execute_sql("INSERT INTO author (name, email, active, joined) VALUES ('Gil', 'gil@example.com', 1, NOW())")
    assert pw.execute_sql("SELECT country FROM author WHERE name = 'Gil'").fetchone() == ("US",)
    migrate(m.drop_column_default("author", "country"))
    assert columns(pw, "author")["country"].default is None


def test_migrate_add_and_drop_index(pw: MySQLDatabase) -> None:
    m = MySQLMigrator(pw)
    migrate(
        m.add_index("author", ("country",), False),
        m.add_index("author", ("name", "born"), True),
    )
    idx = indexes(pw, "author")
    assert idx["author_country"].columns == ["country"] and not idx["author_country"].unique
    assert idx["author_name_born"].columns == ["name", "born"] and idx["author_name_born"].unique
    with pytest.raises(IntegrityError):
        pw.execute_sql("INSERT INTO author (name, email, active, born, joined, country) "
                       "SELECT name, 'dup@example.com', active, born, joined, country FROM author WHERE born IS NOT NULL LIMIT 1")
    migrate(m.drop_index("author", "author_name_born"))
    assert "author_name_born" not in indexes(pw, "author")


def test_migrate_drop_column(pw: MySQLDatabase) -> None:
    m = MySQLMigrator(pw)
    # reviewer_id is a foreign key: DROP FOREIGN KEY first, then DROP COLUMN ... CASCADE
    migrate(
        m.drop_column("author", "bio"),
        m.drop_column("book", "reviewer_id"),
    )
    assert "bio" not in columns(pw, "author")
    assert "reviewer_id" not in columns(pw, "book")
    assert [fk.column for fk in pw.get_foreign_keys("book")] == ["author_id"]


def test_migrate_rename_table(pw: MySQLDatabase) -> None:
    m = MySQLMigrator(pw)
    migrate(m.rename_table("tag", "label"))
    try:
        assert "label" in pw.get_tables() and "tag" not in pw.get_tables()
        # the foreign key of the through table follows the renamed parent
        through = sorted((fk.column, fk.dest_table) for fk in pw.get_foreign_keys("book_tag_through"))
        assert through == [("book_id", "book"), ("tag_id", "label")]
        book_id = pw.execute_sql("SELECT id FROM book WHERE title = 'Gamma'").fetchone()[0]
        tag_id = pw.execute_sql("SELECT id FROM label WHERE label = 'sf'").fetchone()[0]
        pw.execute_sql("INSERT INTO book_tag_through (book_id, tag_id) VALUES (%s, %s)", (book_id, tag_id))
        pw.execute_sql("DELETE FROM book_tag_through WHERE book_id = %s", (book_id,))
    finally:
        migrate(m.rename_table("label", "tag"))
    assert sorted(t.label for t in Tag.select()) == ["classic", "sf"]


def test_drop_tables(pw: MySQLDatabase) -> None:
    pw.drop_tables(MODELS)
    assert pw.get_tables() == []
