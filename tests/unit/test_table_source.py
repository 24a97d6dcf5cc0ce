"""A whole table as a source: files (CSV, Parquet) and SQL (the machine's real PostgreSQL), by day or whole."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from include.mlpipeline.core.problem import Source
from include.mlpipeline.data import etl
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.data.table_source import TableSource, is_sql_url
from include.penguins import PROBLEM as PENGUINS

POSTGRES = os.environ.get("MLP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
DATABASE_URL = f"{POSTGRES}/test"

TABLE = pd.DataFrame(
    {
        "sold_at": ["2024-03-01 09:15", "2024-03-01 17:40", "2024-03-02 08:00", "2024-03-04 12:00"],
        "store": ["a", "b", "a", "c"],
        "amount": [12.5, 7.0, 3.25, 40.0],
    }
)
DAYS = [dt.date(2024, 3, d) for d in (1, 2, 3, 4)]


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "sales.csv"
    TABLE.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_with_a_date_column_splits_into_days(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"sales.{fmt}"
    TABLE.to_csv(path, index=False) if fmt == "csv" else TABLE.to_parquet(path, index=False)
    source = TableSource("sales", str(path), date_column="sold_at")

    slices = source.extract(DAYS)

    assert [len(slices[d]) if slices[d] is not None else None for d in DAYS] == [2, 1, None, 1]
    assert slices[DAYS[0]]["store"].tolist() == ["a", "b"]
    assert source.available_days() == [DAYS[0], DAYS[1], DAYS[3]]


def test_a_file_without_a_date_column_is_a_snapshot_for_every_day(csv_file: Path) -> None:
    source = TableSource("sales", f"file://{csv_file}")

    slices = source.extract(DAYS[:2])

    assert all(len(frame) == 4 for frame in slices.values())
    assert source.available_days() == []


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        (TableSource("sales", "/no/such/file.csv", date_column="sold_at"), FileNotFoundError, "no file at"),
        (TableSource("sales", "PLACEHOLDER", date_column="day"), DataQualityError, "the date column 'day' is not in"),
    ],
)
def test_a_table_that_cannot_be_read_by_day_says_why(
    source: TableSource, error: type, message: str, csv_file: Path
) -> None:
    if source.location == "PLACEHOLDER":
        source = dataclasses.replace(source, location=str(csv_file))
    with pytest.raises(error, match=message):
        source.extract(DAYS)


def test_an_unreadable_file_is_a_data_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.csv"
    path.write_text("sold_at,store,amount\n2024-03-01,a")  # cut off

    with pytest.raises(DataQualityError, match=r"raw_sales.*readable_file.*broken\.csv"):
        TableSource("sales", str(path)).extract(DAYS)


def test_sql_locations_are_told_from_files() -> None:
    assert is_sql_url("postgresql://u@h/db") and is_sql_url("postgresql+psycopg2://h/db") and is_sql_url("sqlite:///x")
    assert not is_sql_url("s3://bucket/t.csv") and not is_sql_url("/data/t.csv")
    with pytest.raises(ValueError, match="needs a table or a query"):
        TableSource("t", "postgresql://u@h/db")


# ------------------------------------------------------------------------------- PostgreSQL
@pytest.fixture
def sales_table() -> Iterator[str]:
    """A real table in the machine's PostgreSQL (database ``test``), dropped afterwards."""
    import sqlalchemy as sa

    name = f"sales_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(DATABASE_URL)
    frame = TABLE.assign(sold_at=pd.to_datetime(TABLE["sold_at"]))
    frame.to_sql(name, engine, index=False)
    try:
        yield name
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


def test_a_postgres_table_splits_into_days_in_sql(sales_table: str) -> None:
    source = TableSource("sales", DATABASE_URL, table=sales_table, date_column="sold_at")

    slices = source.extract([DAYS[0], DAYS[3]])

    assert sorted(slices) == [DAYS[0], DAYS[3]]
    assert slices[DAYS[0]]["amount"].tolist() == [12.5, 7.0]
    assert slices[DAYS[3]]["store"].tolist() == ["c"]
    assert source.available_days() == [DAYS[0], DAYS[1], DAYS[3]]


def test_a_postgres_query_is_a_snapshot(sales_table: str) -> None:
    query = f'SELECT store, amount FROM "{sales_table}" WHERE amount > 5'  # noqa: S608 - the test's own table
    source = TableSource("big_sales", DATABASE_URL, query=query)

    (frame,) = source.extract([DAYS[0]]).values()

    assert sorted(frame["store"]) == ["a", "b", "c"]


def test_a_connection_url_given_as_storage_option_wins(sales_table: str) -> None:
    source = TableSource("sales", "postgresql://nobody@127.0.0.1:1/none", table=sales_table)

    frame = source.read({"sqlalchemy_url": DATABASE_URL})

    assert len(frame) == 4


def test_a_missing_postgres_table_is_a_data_error_naming_it() -> None:
    with pytest.raises(DataQualityError, match=r"table_readable.*no_such_table"):
        TableSource("sales", DATABASE_URL, table="no_such_table").read()


def test_a_postgres_connection_becomes_a_sqlalchemy_url() -> None:
    from airflow.sdk import Connection

    from include.mlpipeline.orchestration.connections import connection_storage_options

    conn = Connection(
        conn_id="db", conn_type="postgres", host="db.internal", login="etl", password="s3cret", port=5433, schema="shop"
    )

    assert connection_storage_options(conn) == {
        "sqlalchemy_url": "postgresql+psycopg2://etl:s3cret@db.internal:5433/shop"
    }


# ------------------------------------------------------------------------------- bootstrap
def test_a_first_etl_run_loads_every_day_a_table_has(tmp_path: Path, csv_file: Path) -> None:
    source = TableSource("sales", str(csv_file), date_column="sold_at")
    problem = dataclasses.replace(
        PENGUINS,
        snapshot=False,
        sources=(Source("sales", source.extract, PENGUINS.sources[0].schema, available_days=source.available_days),),
    )
    lake = Lake(f"file://{tmp_path}/lake")

    assert etl.plan_partitions("2024-03-10", lake=lake, problem=problem) == [
        "2024-03-01",
        "2024-03-02",
        "2024-03-04",
        "2024-03-10",
    ]
    assert etl.plan_partitions("2024-03-10", bootstrap_days=0, lake=lake, problem=problem) == ["2024-03-10"]
    assert etl.plan_partitions("2024-03-02", lake=lake, problem=problem) == ["2024-03-01", "2024-03-02"]
