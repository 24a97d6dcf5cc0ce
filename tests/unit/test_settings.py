"""Settings come from MLP_* environment variables, are validated, and are cached until cleared."""

from __future__ import annotations

import pydantic
import pytest

from include.mlpipeline.core.settings import Settings, get_settings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_BOOTSTRAP_DAYS", "3")
    monkeypatch.setenv("MLP_TRAIN_MAX_ROWS", "250000")
    monkeypatch.setenv("MLP_LAKE_STORAGE_OPTIONS", '{"endpoint_url": "http://minio:9000"}')
    get_settings.cache_clear()

    settings = get_settings()

    assert settings.bootstrap_days == 3
    assert settings.train_max_rows == 250_000
    assert settings.lake_storage_options == {"endpoint_url": "http://minio:9000"}


def test_get_settings_is_cached_until_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    first = get_settings()
    monkeypatch.setenv("MLP_TEST_SIZE", "7 days")

    assert get_settings() is first
    get_settings.cache_clear()
    assert get_settings().test_size == "7 days"


@pytest.mark.parametrize(
    ("value", "expected"), [("none", None), ("", None), (" NULL ", None), (" @hourly ", "@hourly")]
)
def test_etl_schedule_none_means_trigger_only(value: str, expected: str | None) -> None:
    assert Settings(etl_schedule=value).etl_schedule == expected


def test_urls_lose_their_trailing_slash() -> None:
    settings = Settings(lake_uri="s3://bucket/lake/", api_url="http://api:8000/", mlflow_tracking_uri="http://m/")

    assert (settings.lake_uri, settings.api_url, settings.mlflow_tracking_uri) == (
        "s3://bucket/lake",
        "http://api:8000",
        "http://m",
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quarantine_max_share", 1.5),
        ("train_window_days", 2),
        ("max_parallel_partitions", 0),
        ("bootstrap_days", -1),
        ("train_max_rows", 10),
        ("test_size", "seven days"),
        ("validation_size", "1.5"),
        ("validation_size", "0 rows"),
        ("search_trials", -1),
    ],
)
def test_out_of_range_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        Settings(**{field: value})


def test_api_key_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLP_API_KEY", "s3cret")

    settings = Settings()

    assert settings.api_key_value == "s3cret"
    assert "s3cret" not in repr(settings)
    assert Settings(api_key=None).api_key_value is None
