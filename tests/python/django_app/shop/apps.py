import logging

from django.apps import AppConfig
from django.conf import settings

failed_sql = logging.getLogger("shop.failed_sql")


def log_failed_sql(execute, sql, params, many, context):
    """An execute wrapper that logs the statement and error of every failing query.

    Django's own SQL log shows ``None`` for a statement that failed (mysqlclient only records
    the executed query after success), so this names the failing SQL and its parameters."""
    try:
        return execute(sql, params, many, context)
    except Exception as e:
        failed_sql.error("FAILED SQL: %s; params=%r; error=%r", " ".join(str(sql).split()), params, e)
        raise


def install_wrapper(sender, connection, **kwargs):
    if log_failed_sql not in connection.execute_wrappers:
        connection.execute_wrappers.append(log_failed_sql)


class ShopConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "shop"

    def ready(self):
        if getattr(settings, "SQL_LOG", ""):
            from django.db.backends.signals import connection_created

            connection_created.connect(install_wrapper)
