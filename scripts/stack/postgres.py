"""Throwaway PostgreSQL databases for the production-like stacks of the end-to-end tests and benchmarks."""

from __future__ import annotations

import os

POSTGRES_ADMIN_URL = os.environ.get("MLP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def create_postgres_database(name: str, admin_url: str = POSTGRES_ADMIN_URL) -> str:
    """Create an empty PostgreSQL database (dropping a leftover of that name); returns its URL."""
    import psycopg2

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return f"{admin_url.rsplit('/', 1)[0]}/{name}"


def drop_postgres_database(name: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    import psycopg2

    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()
