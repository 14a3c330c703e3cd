"""ORM exercises for tests/python/test_django.py: ``manage.py shop_smoke SECTION``.

Every section starts from empty shop tables, does its work through the ORM, checks what it
can itself (``expect``: a failing check is reported and the section goes on) and prints
``name=value`` lines that the pytest side compares against exact expected values. Any
failed check or exception fails the command with a non-zero exit.
"""

from __future__ import annotations

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, connection, transaction
from django.db.models import Avg, Count, F, Max, Min, Q, Sum
from django.utils import timezone

from shop.models import Category, Order, Product, Tag

SECTIONS = ("crud", "relations", "aggregates", "atomic", "bulk", "contrib")


class Command(BaseCommand):
    help = "Run one ORM exercise section against the configured database"

    def add_arguments(self, parser):
        parser.add_argument("section", choices=SECTIONS)

    def handle(self, *args, section: str, **options):
        self.out = []
        self.failures = []
        reset()
        try:
            getattr(self, f"section_{section}")()
        finally:
            for line in self.out:
                self.stdout.write(line)
        if self.failures:
            raise CommandError(f"{len(self.failures)} check(s) failed in section {section}:\n  "
                               + "\n  ".join(self.failures))
        self.stdout.write(f"SECTION {section} OK")

    # -- helpers --------------------------------------------------------------------------

    def emit(self, name: str, value) -> None:
        self.out.append(f"{name}={value!r}")

    def expect(self, what: str, compute, want) -> None:
        """Evaluate ``compute()`` and compare it with ``want``; a mismatch or an exception is
        recorded and the section goes on, so that one run reports every failing check."""
        try:
            got = compute()
        except Exception as e:
            self.out.append(f"{what}=ERROR {type(e).__name__}: {e}")
            self.failures.append(f"{what}: {type(e).__name__}: {e}")
            return
        self.emit(what, got)
        if got != want:
            self.failures.append(f"{what}: got {got!r}, want {want!r}")

    # -- sections -------------------------------------------------------------------------

    def section_crud(self) -> None:
        books = Category.objects.create(name="books", description="paper")
        toys = Category.objects.create(name="toys")
        self.expect("category_count", lambda: Category.objects.count(), 2)
        self.expect("default_description", lambda: Category.objects.get(pk=toys.pk).description, "")

        p = Product.objects.create(category=books, name="Dune", price=Decimal("19.99"),
                                   attrs={"color": "red", "pages": 412, "tags": ["scifi", "classic"],
                                          "dims": {"w": 13, "h": 20}})
        Product.objects.create(category=books, name="Emma", price=Decimal("7.50"),
                               attrs={"color": "blue", "pages": 300}, active=False)
        Product.objects.create(category=toys, name="Yo-yo", price=Decimal("3.25"),
                               attrs={"color": "red", "material": "wood"}, status="live")
        Product.objects.create(category=toys, name="Kite \u2014 \U0001F680", price=Decimal("12.00"),
                               attrs={})

        got = Product.objects.get(pk=p.pk)
        self.expect("price", lambda: got.price, Decimal("19.99"))
        self.expect("price_type", lambda: type(got.price).__name__, "Decimal")
        self.expect("attrs", lambda: got.attrs, {"color": "red", "pages": 412, "tags": ["scifi", "classic"],
                                         "dims": {"w": 13, "h": 20}})
        self.expect("status_default", lambda: got.status, "draft")
        self.expect("active_default", lambda: got.active, True)
        self.expect("stock_default", lambda: got.stock, 0)
        self.expect("created_at_aware", lambda: timezone.is_aware(got.created_at), True)
        age = timezone.now() - got.created_at
        self.expect("created_at_recent", lambda: datetime.timedelta(minutes=-5) < age < datetime.timedelta(minutes=5),
                   True)
        self.expect("created_year_filter",
                   lambda: Product.objects.filter(created_at__year=timezone.now().year).count(), 4)
        self.expect("unicode_name", lambda: Product.objects.get(name__startswith="Kite").name,
                   "Kite \u2014 \U0001F680")

        # filters
        self.expect("active_names", lambda: list(Product.objects.filter(active=True).values_list("name", flat=True)),
                   ["Dune", "Yo-yo", "Kite \u2014 \U0001F680"])
        self.expect("price_gt_10", lambda: sorted(Product.objects.filter(price__gt=10).values_list("name", flat=True)),
                   ["Dune", "Kite \u2014 \U0001F680"])
        self.expect("price_range", lambda: Product.objects.filter(price__range=(Decimal("3"), Decimal("8"))).count(), 2)
        self.expect("icontains", lambda: list(Product.objects.filter(name__icontains="DUN").values_list("name", flat=True)),
                   ["Dune"])
        self.expect("in_lookup", lambda: Product.objects.filter(name__in=["Dune", "Emma", "nope"]).count(), 2)
        self.expect("q_or_exclude",
                   lambda: sorted(Product.objects.filter(Q(status="live") | Q(price__lt=10))
                          .exclude(active=False).values_list("name", flat=True)),
                   ["Yo-yo"])
        self.expect("exists_yes", lambda: Product.objects.filter(name="Emma").exists(), True)
        self.expect("exists_no", lambda: Product.objects.filter(name="Nobody").exists(), False)
        self.expect("order_by_price_desc",
                   lambda: list(Product.objects.order_by("-price").values_list("name", flat=True)[:2]),
                   ["Dune", "Kite \u2014 \U0001F680"])
        self.expect("fk_filter", lambda: Product.objects.filter(category__name="toys").count(), 2)

        # JSON key lookups
        self.expect("json_key_exact",
                   lambda: sorted(Product.objects.filter(attrs__color="red").values_list("name", flat=True)),
                   ["Dune", "Yo-yo"])
        self.expect("json_key_gte", lambda: list(Product.objects.filter(attrs__pages__gte=400).values_list("name", flat=True)),
                   ["Dune"])
        self.expect("json_nested_key", lambda: list(Product.objects.filter(attrs__dims__w=13).values_list("name", flat=True)),
                   ["Dune"])
        self.expect("json_array_index", lambda: list(Product.objects.filter(attrs__tags__0="scifi")
                                            .values_list("name", flat=True)), ["Dune"])
        self.expect("json_has_key", lambda: sorted(Product.objects.filter(attrs__has_key="material")
                                          .values_list("name", flat=True)), ["Yo-yo"])
        self.expect("json_has_any_keys", lambda: Product.objects.filter(attrs__has_any_keys=["material", "pages"]).count(), 3)
        self.expect("json_contains", lambda: list(Product.objects.filter(attrs__contains={"color": "blue"})
                                         .values_list("name", flat=True)), ["Emma"])
        self.expect("json_empty", lambda: list(Product.objects.filter(attrs={}).values_list("name", flat=True)),
                   ["Kite \u2014 \U0001F680"])
        self.expect("json_values_key", lambda: sorted(v for v in Product.objects.filter(attrs__has_key="color")
                                             .values_list("attrs__color", flat=True)),
                   ["blue", "red", "red"])

        # update through save()
        got.price = Decimal("21.00")
        got.attrs["color"] = "green"
        got.save()
        again = Product.objects.get(pk=p.pk)
        self.expect("updated_price", lambda: again.price, Decimal("21.00"))
        self.expect("updated_json", lambda: again.attrs["color"], "green")
        self.expect("update_fields", lambda: Product.objects.filter(pk=p.pk).update(status="live"), 1)
        self.expect("get_or_create_existing", lambda: Category.objects.get_or_create(name="books")[1], False)
        self.expect("get_or_create_new", lambda: Category.objects.get_or_create(name="games")[1], True)
        self.expect("update_or_create", lambda: Category.objects.update_or_create(
            name="games", defaults={"description": "board"})[0].description, "board")
        # delete a single object
        Product.objects.get(name="Emma").delete()
        self.expect("count_after_delete", lambda: Product.objects.count(), 3)
        try:
            Product.objects.get(name="Emma")
        except Product.DoesNotExist:
            self.emit("does_not_exist", True)
        else:
            raise CommandError("deleted product still there")

    def section_relations(self) -> None:
        books = Category.objects.create(name="books")
        toys = Category.objects.create(name="toys")
        scifi, classic, kids = (Tag.objects.create(name=n) for n in ("scifi", "classic", "kids"))
        dune = Product.objects.create(category=books, name="Dune", price=Decimal("10"))
        emma = Product.objects.create(category=books, name="Emma", price=Decimal("8"))
        kite = Product.objects.create(category=toys, name="Kite", price=Decimal("12"))

        dune.tags.add(scifi, classic)
        emma.tags.add(classic)
        kite.tags.set([kids, classic])
        self.expect("m2m_rows", lambda: Product.tags.through.objects.count(), 5)
        self.expect("dune_tags", lambda: sorted(t.name for t in dune.tags.all()), ["classic", "scifi"])
        self.expect("classic_products", lambda: sorted(classic.products.values_list("name", flat=True)),
                   ["Dune", "Emma", "Kite"])
        kite.tags.remove(classic)
        self.expect("kite_tags_after_remove", lambda: list(kite.tags.values_list("name", flat=True)), ["kids"])
        dune.tags.add(scifi)  # already there: no duplicate row
        self.expect("m2m_rows_after_readd", lambda: Product.tags.through.objects.count(), 4)
        self.expect("filter_across_m2m",
                   lambda: list(Product.objects.filter(tags__name="classic").order_by("name")
                        .values_list("name", flat=True)), ["Dune", "Emma"])
        self.expect("filter_m2m_distinct",
                   lambda: Product.objects.filter(tags__name__in=["scifi", "classic"]).distinct().count(), 2)
        emma.tags.clear()
        self.expect("emma_tags_cleared", lambda: emma.tags.count(), 0)

        Order.objects.create(product=dune, quantity=2, comment="first")
        Order.objects.create(product=dune, quantity=1)
        Order.objects.create(product=kite, quantity=5)
        self.expect("reverse_fk", lambda: dune.orders.count(), 2)
        self.expect("order_comment", lambda: Order.objects.get(comment="first").quantity, 2)

        with self.assertNumQueries(1):
            rows = [(o.product.name, o.product.category.name)
                    for o in Order.objects.select_related("product__category").order_by("id")]
        self.expect("select_related", lambda: rows, [("Dune", "books"), ("Dune", "books"), ("Kite", "toys")])

        with self.assertNumQueries(3):
            cats = list(Category.objects.prefetch_related("products__tags").order_by("name"))
            shape = [(c.name, [(p.name, sorted(t.name for t in p.tags.all())) for p in c.products.all()])
                     for c in cats]
        self.expect("prefetch_related", lambda: shape,
                   [("books", [("Dune", ["classic", "scifi"]), ("Emma", [])]), ("toys", [("Kite", ["kids"])])])

        self.expect("two_hop_filter", lambda: Order.objects.filter(product__category__name="books").count(), 2)
        self.expect("values_join", lambda: list(Order.objects.filter(quantity__gte=2).order_by("quantity")
                                       .values_list("product__name", "quantity")),
                   [("Dune", 2), ("Kite", 5)])

    def section_aggregates(self) -> None:
        books = Category.objects.create(name="books")
        toys = Category.objects.create(name="toys")
        Category.objects.create(name="empty")
        red, blue = Tag.objects.create(name="red"), Tag.objects.create(name="blue")
        ps = [Product.objects.create(category=c, name=n, price=Decimal(pr), stock=st)
              for c, n, pr, st in [(books, "a", "10.00", 1), (books, "b", "20.50", 2),
                                   (books, "c", "5.25", 0), (toys, "d", "7.00", 10)]]
        ps[0].tags.add(red, blue)
        ps[1].tags.add(red)
        for p, q in [(ps[0], 1), (ps[0], 3), (ps[3], 2)]:
            Order.objects.create(product=p, quantity=q)

        counts = list(Category.objects.annotate(n=Count("products")).order_by("name").values_list("name", "n"))
        self.expect("annotate_count", lambda: counts, [("books", 3), ("empty", 0), ("toys", 1)])
        self.expect("annotate_filter_having",
                   lambda: list(Category.objects.annotate(n=Count("products")).filter(n__gte=1)
                        .order_by("-n").values_list("name", flat=True)), ["books", "toys"])
        self.expect("annotate_count_filtered",
                   lambda: list(Category.objects.annotate(n=Count("products", filter=Q(products__price__gt=6)))
                        .order_by("name").values_list("name", "n")),
                   [("books", 2), ("empty", 0), ("toys", 1)])
        agg = Product.objects.aggregate(total=Sum("price"), avg=Avg("price"), hi=Max("price"),
                                        lo=Min("price"), n=Count("id"), stock=Sum("stock"))
        self.expect("aggregate_sum", lambda: agg["total"], Decimal("42.75"))
        self.expect("aggregate_avg_2dp", lambda: round(agg["avg"], 4), Decimal("10.6875"))
        self.expect("aggregate_max_min", lambda: (agg["hi"], agg["lo"]), (Decimal("20.50"), Decimal("5.25")))
        self.expect("aggregate_count", lambda: agg["n"], 4)
        self.expect("aggregate_stock", lambda: agg["stock"], 13)
        self.expect("aggregate_empty", lambda: Product.objects.filter(price__gt=1000).aggregate(s=Sum("price"))["s"], None)
        self.expect("group_by_values",
                   lambda: list(Product.objects.values("category__name").annotate(total=Sum("price"), n=Count("id"))
                        .order_by("category__name")
                        .values_list("category__name", "total", "n")),
                   [("books", Decimal("35.75"), 3), ("toys", Decimal("7.00"), 1)])
        self.expect("count_distinct_tags",
                   lambda: Product.objects.filter(tags__isnull=False).aggregate(n=Count("id", distinct=True))["n"], 2)
        self.expect("annotate_sum_orders",
                   lambda: list(Product.objects.annotate(q=Sum("orders__quantity")).filter(q__isnull=False)
                        .order_by("name").values_list("name", "q")), [("a", 4), ("d", 2)])
        self.expect("annotate_f_expression",
                   lambda: list(Product.objects.annotate(value=F("price") * F("stock")).filter(value__gt=0)
                        .order_by("name").values_list("name", "value")),
                   [("a", Decimal("10.00")), ("b", Decimal("41.00")), ("d", Decimal("70.00"))])

    def section_atomic(self) -> None:
        cat = Category.objects.create(name="tx")

        class Boom(Exception):
            pass

        # outer commits, inner rolls back to its savepoint
        with transaction.atomic():
            Product.objects.create(category=cat, name="outer-before", price=1)
            try:
                with transaction.atomic():
                    Product.objects.create(category=cat, name="inner-lost", price=2)
                    with transaction.atomic():
                        Product.objects.create(category=cat, name="inner-inner-lost", price=3)
                    raise Boom()
            except Boom:
                pass
            with transaction.atomic():
                Product.objects.create(category=cat, name="inner-kept", price=4)
            Product.objects.create(category=cat, name="outer-after", price=5)
        self.expect("nested_survivors", lambda: sorted(Product.objects.values_list("name", flat=True)),
                   ["inner-kept", "outer-after", "outer-before"])

        # a whole outer block rolled back
        try:
            with transaction.atomic():
                Product.objects.create(category=cat, name="outer-lost", price=6)
                with transaction.atomic():
                    Product.objects.create(category=cat, name="inner-of-lost", price=7)
                raise Boom()
        except Boom:
            pass
        self.expect("outer_rollback_count", lambda: Product.objects.count(), 3)

        # IntegrityError inside a savepoint; the outer transaction goes on and commits
        with transaction.atomic():
            try:
                with transaction.atomic():
                    Category.objects.create(name="tx")  # duplicate unique name
            except IntegrityError:
                self.emit("integrity_error", True)
            else:
                raise CommandError("duplicate unique value was accepted")
            Category.objects.create(name="after-integrity-error")
        self.expect("categories_after_integrity", lambda: sorted(Category.objects.values_list("name", flat=True)),
                   ["after-integrity-error", "tx"])

        # on_commit runs only for the committed block
        fired = []
        with transaction.atomic():
            transaction.on_commit(lambda: fired.append("outer"))
            try:
                with transaction.atomic():
                    transaction.on_commit(lambda: fired.append("inner"))
                    raise Boom()
            except Boom:
                pass
        self.expect("on_commit", lambda: fired, ["outer"])

        # select_for_update inside a transaction
        with transaction.atomic():
            locked = list(Product.objects.select_for_update().filter(name="outer-after"))
            locked[0].price = Decimal("55.55")
            locked[0].save(update_fields=["price"])
        self.expect("select_for_update", lambda: Product.objects.get(name="outer-after").price, Decimal("55.55"))

        # autocommit is back on after the blocks
        self.expect("autocommit", lambda: connection.get_autocommit(), True)

    def section_bulk(self) -> None:
        books = Category.objects.create(name="books")
        toys = Category.objects.create(name="toys")
        tag = Tag.objects.create(name="t")
        made = Product.objects.bulk_create(
            [Product(category=books if i % 2 else toys, name=f"p{i:03d}", price=Decimal(i) / 4,
                     attrs={"i": i, "even": i % 2 == 0}, stock=i)
             for i in range(100)], batch_size=40)
        self.expect("bulk_created", lambda: len(made), 100)
        self.expect("bulk_count", lambda: Product.objects.count(), 100)
        # only backends that can return rows from a bulk INSERT (MariaDB 10.5+) set the pks
        self.expect("bulk_pks_set", lambda: all(p.pk is not None for p in made),
                    connection.features.can_return_rows_from_bulk_insert)
        self.expect("bulk_json", lambda: Product.objects.get(name="p042").attrs, {"i": 42, "even": True})
        self.expect("bulk_json_bool_filter", lambda: Product.objects.filter(attrs__even=True).count(), 50)
        self.expect("bulk_sum_price", lambda: Product.objects.aggregate(s=Sum("price"))["s"], Decimal("1237.50"))

        self.expect("update_count", lambda: Product.objects.filter(stock__lt=10).update(status="low"), 10)
        self.expect("update_f", lambda: Product.objects.filter(category=toys).update(stock=F("stock") + 1000), 50)
        self.expect("update_f_result", lambda: Product.objects.get(name="p010").stock, 1010)
        self.expect("update_noop_matched", lambda: Product.objects.filter(status="low").update(status="low"), 10)
        objs = list(Product.objects.filter(name__in=["p001", "p003"]))
        for o in objs:
            o.price = Decimal("99.99")
        self.expect("bulk_update", lambda: Product.objects.bulk_update(objs, ["price"]), 2)
        self.expect("bulk_update_result", lambda: Product.objects.filter(price=Decimal("99.99")).count(), 2)
        Category.objects.bulk_create([Category(name="books"), Category(name="new")], ignore_conflicts=True)
        self.expect("ignore_conflicts", lambda: sorted(Category.objects.values_list("name", flat=True)),
                   ["books", "new", "toys"])

        odd = Product.objects.filter(category=books)
        for p in odd[:5]:
            p.tags.add(tag)
            Order.objects.create(product=p, quantity=1)
        self.expect("orders_before", lambda: Order.objects.count(), 5)
        self.expect("m2m_before", lambda: Product.tags.through.objects.count(), 5)
        deleted, per_model = books.delete()
        self.expect("cascade_delete_total", lambda: deleted, 1 + 50 + 5 + 5)
        self.expect("cascade_delete_per_model", lambda: dict(sorted(per_model.items())),
                   {"shop.Category": 1, "shop.Order": 5, "shop.Product": 50, "shop.Product_tags": 5})
        self.expect("after_cascade", lambda: (Product.objects.count(), Order.objects.count(),
                                     Product.tags.through.objects.count(), Tag.objects.count()), (50, 0, 0, 1))
        self.expect("queryset_delete", lambda: Product.objects.filter(stock__gte=1050).delete()[0], 25)
        self.expect("left", lambda: Product.objects.count(), 25)

    def section_contrib(self) -> None:
        User = get_user_model()
        u = User.objects.create_user("alice", "alice@example.com", "s3cret")
        self.expect("check_password", lambda: User.objects.get(username="alice").check_password("s3cret"), True)
        g = Group.objects.create(name="editors")
        perm = Permission.objects.get(codename="change_product", content_type__app_label="shop")
        g.permissions.add(perm)
        u.groups.add(g)
        u = User.objects.get(pk=u.pk)  # fresh: no permission cache
        self.expect("has_perm", lambda: u.has_perm("shop.change_product"), True)
        self.expect("has_perm_other", lambda: u.has_perm("shop.delete_product"), False)
        self.expect("shop_content_types",
                   lambda: sorted(ContentType.objects.filter(app_label="shop").values_list("model", flat=True)),
                   ["category", "order", "product", "tag"])
        self.expect("shop_permissions", lambda: Permission.objects.filter(content_type__app_label="shop").count(), 16)
        s = SessionStore()
        s["cart"] = [1, 2, 3]
        s.create()
        self.expect("session_load", lambda: SessionStore(session_key=s.session_key).load(), {"cart": [1, 2, 3]})
        User.objects.filter(username="alice").delete()
        Group.objects.filter(name="editors").delete()
        self.expect("users_left", lambda: User.objects.filter(username="alice").count(), 0)

    # -- tiny assertNumQueries ---------------------------------------------------------------

    def assertNumQueries(self, n: int):
        from django.test.utils import CaptureQueriesContext

        cmd = self

        class _Ctx(CaptureQueriesContext):
            def __exit__(self, exc_type, exc, tb):
                super().__exit__(exc_type, exc, tb)
                if exc_type is None and len(self.captured_queries) != n:
                    raise CommandError(f"expected {n} queries, got {len(self.captured_queries)}: "
                                       + "; ".join(q["sql"] for q in self.captured_queries))
                cmd.emit("queries", len(self.captured_queries))

        return _Ctx(connection)


def reset() -> None:
    """Empty the shop tables (children first) so that every section starts clean."""
    Order.objects.all().delete()
    Product.tags.through.objects.all().delete()
    Product.objects.all().delete()
    Tag.objects.all().delete()
    Category.objects.all().delete()
