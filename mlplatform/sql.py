"""Run one raw SQL statement through Django's connection, bound server-side on PostgreSQL.

Django's psycopg cursor binds parameters client-side: every statement reaches PostgreSQL as new text
and is parsed and planned again (0.2 ms for the log-metric statement, as long as executing it). A
plain psycopg cursor on the same connection (same transaction) binds server-side, so PostgreSQL can
keep the plan of a hot statement (``prepare=True``) and answer in binary (numbers without text
conversion). Statements are still recorded by Django's debug cursor (``DEBUG``, query-count tests) and
database errors still become ``django.db`` errors (a 503 in both APIs, not a 500).
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from django.db import connection


def fetch_all(
    sql: str, params: list[Any], *, binary: bool = False, prepare: bool | None = None
) -> list[tuple[Any, ...]]:
    """All rows of ``sql`` (``%s`` placeholders); ``prepare=True`` keeps its plan on the connection."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []
        recorded = cursor.debug_sql(sql, params) if hasattr(cursor, "debug_sql") else contextlib.nullcontext()
        with connection.wrap_database_errors, recorded, psycopg.Cursor(connection.connection) as server_cursor:
            server_cursor.execute(sql, params, binary=binary, prepare=prepare)
            return server_cursor.fetchall() if server_cursor.description is not None else []
