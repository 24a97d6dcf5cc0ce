"""The penguin example alone: its source, cleaning rules, contracts, features and API request.

Real rows come from the palmerpenguins package (installed, nothing downloaded); rule-by-rule cases
use one-row frames in the file's own columns.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pydantic
import pytest

from include.mlpipeline.core.request_frame import stack_columns
from include.mlpipeline.data.quality import DataQualityError, GateResult, apply_gate
from include.mlpipeline.serving.columnar import ColumnarValidator
from include.penguins import PROBLEM, cleaning, features, serving, sources
from include.penguins.schemas import LEAKAGE_COLUMNS, RAW_HEADERS, CleanPenguins, PenguinFeatures, RawPenguins

DAY = dt.date(2026, 6, 1)
QUARANTINE_CAP = 0.01  # the settings' default share


def _raw_row(**overrides: object) -> dict[str, object]:
    """One raw penguin in the file's columns (named by their snake_case field): a measured Adelie male."""
    row: dict[str, object] = {
        "study_name": "PAL0708",
        "sample_number": 1,
        "species": "Adelie Penguin (Pygoscelis adeliae)",
        "region": "Anvers",
        "island": "Torgersen",
        "stage": "Adult, 1 Egg Stage",
        "individual_id": "N1A1",
        "clutch_completion": "Yes",
        "date_egg": "2007-11-11",
        "culmen_length_mm": 39.1,
        "culmen_depth_mm": 18.7,
        "flipper_length_mm": 181.0,
        "body_mass_g": 3750.0,
        "sex": "MALE",
        "delta_15_n": 8.9,
        "delta_13_c": -24.7,
        "comments": None,
    }
    return {RAW_HEADERS[name]: value for name, value in {**row, **overrides}.items()}


def _raw(*rows: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame([_raw_row(sample_number=n + 1, **row) for n, row in enumerate(rows)])


def _clean_gate(raw: pd.DataFrame, max_share: float = QUARANTINE_CAP) -> GateResult:
    transformed = cleaning.transform({cleaning.SOURCE: raw}, DAY)
    return apply_gate(transformed, CleanPenguins, gate="clean", max_quarantine_share=max_share)


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return sources.extract([DAY])[DAY]


@pytest.fixture(scope="module")
def clean_gate(raw: pd.DataFrame) -> GateResult:
    return _clean_gate(apply_gate(raw, RawPenguins, gate="raw", max_quarantine_share=0.0).valid)


@pytest.fixture(scope="module")
def clean(clean_gate: GateResult) -> pd.DataFrame:
    return clean_gate.valid


@pytest.fixture(scope="module")
def etl_features(clean: pd.DataFrame) -> pd.DataFrame:
    return PROBLEM.build_features(clean)


# ---------------------------------------------------------------------------------- the source
def test_the_raw_extract_passes_the_raw_contract(raw: pd.DataFrame) -> None:
    result = apply_gate(raw, RawPenguins, gate="raw", max_quarantine_share=0.0)

    assert result.report.rows_out == len(raw) == 344
    assert list(result.valid.columns) == list(RAW_HEADERS.values())


def test_extract_gives_every_day_the_whole_table_as_its_own_copy() -> None:
    days = [DAY, DAY + dt.timedelta(days=1)]

    tables = sources.extract(days)

    assert list(tables) == days
    pd.testing.assert_frame_equal(tables[days[0]], tables[days[1]])
    tables[days[0]].loc[0, RAW_HEADERS["body_mass_g"]] = -1.0
    assert sources.whole_table().loc[0, RAW_HEADERS["body_mass_g"]] == 3750.0


# -------------------------------------------------------------------------------- the cleaning
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Adelie Penguin (Pygoscelis adeliae)", "Adelie"),
        ("Chinstrap penguin (Pygoscelis antarctica)", "Chinstrap"),
        ("Gentoo penguin (Pygoscelis papua)", "Gentoo"),
        ("  gentoo ", "Gentoo"),
        ("ADELIE", "Adelie"),
        ("Emperor penguin (Aptenodytes forsteri)", "Emperor"),  # left for the contract to reject
        (None, None),
    ],
)
def test_species_names_are_the_common_name(source: str | None, expected: str | None) -> None:
    assert cleaning.species_names(pd.Series([source], dtype=object)).tolist() == [expected]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("MALE", "male"),
        ("FEMALE", "female"),
        ("Female ", "female"),
        (".", None),
        ("", None),
        (np.nan, None),
        (None, None),
        ("M?", "m?"),  # left for the contract to reject, not guessed
    ],
)
def test_sex_labels(source: object, expected: str | None) -> None:
    assert cleaning.sex_labels(pd.Series([source], dtype=object)).tolist() == [expected]


@pytest.mark.parametrize(("source", "expected"), [("Yes", True), ("No", False), (" yes", True), ("NO", False)])
def test_clutch_flags(source: str, expected: bool) -> None:
    assert cleaning.clutch_flags(pd.Series([source])).tolist() == [expected]


@pytest.mark.parametrize("source", ["maybe", "", None])
def test_clutch_flags_of_other_answers_are_missing(source: str | None) -> None:
    assert cleaning.clutch_flags(pd.Series([source], dtype=object)).isna().tolist() == [True]


def test_transform_renames_normalises_and_keys_the_rows() -> None:
    raw = _raw({}, {"species": "Gentoo penguin (Pygoscelis papua)", "sex": ".", "island": "BISCOE"})

    out = cleaning.transform({cleaning.SOURCE: raw}, DAY)

    assert list(out.columns) == list(CleanPenguins.to_schema().columns)
    assert out["penguin_id"].tolist() == ["PAL0708-Adelie-1", "PAL0708-Gentoo-2"]
    assert out["species"].tolist() == ["Adelie", "Gentoo"]
    assert out["island"].tolist() == ["Torgersen", "Biscoe"]
    assert out["sex"].tolist() == ["male", None]
    assert out["clutch_completion"].tolist() == [True, True]
    assert out["date_egg"].tolist() == [pd.Timestamp("2007-11-11")] * 2


def test_the_key_needs_the_species_because_sample_numbers_count_per_species(
    raw: pd.DataFrame, clean_gate: GateResult
) -> None:
    season_and_sample = raw["studyName"] + "-" + raw["Sample Number"].astype(str)

    assert not season_and_sample.is_unique
    keys = pd.concat([clean_gate.valid["penguin_id"], clean_gate.quarantined["penguin_id"]])
    assert keys.is_unique
    assert len(keys) == len(raw)


def test_the_clean_gate_quarantines_exactly_the_penguins_without_a_body_mass(
    raw: pd.DataFrame, clean_gate: GateResult
) -> None:
    unweighed = raw[raw["Body Mass (g)"].isna()]
    expected = sorted(
        f"{s}-{sp.split()[0]}-{n}" for s, sp, n in unweighed[["studyName", "Species", "Sample Number"]].values
    )

    assert sorted(clean_gate.quarantined["penguin_id"]) == expected
    assert len(expected) == 2
    assert all("body_mass_g:not_nullable" in checks for checks in clean_gate.quarantined["_failed_checks"])
    assert clean_gate.report.rows_out == 342
    assert clean_gate.report.quarantined_share <= QUARANTINE_CAP


def test_clean_rows_are_typed_and_keep_unknown_sexes(clean: pd.DataFrame) -> None:
    assert set(clean["species"]) == {"Adelie", "Chinstrap", "Gentoo"}
    assert set(clean["sex"].dropna()) == {"male", "female"}
    assert int(clean["sex"].isna().sum()) == 9
    assert clean["clutch_completion"].dtype == bool
    assert clean["body_mass_g"].between(2000, 7000).all()


@pytest.mark.parametrize(
    ("override", "failed_check"),
    [
        ({"body_mass_g": 9000.0}, "body_mass_g:less_than_or_equal_to"),
        ({"body_mass_g": 800.0}, "body_mass_g:greater_than_or_equal_to"),
        ({"culmen_length_mm": 80.0}, "culmen_length_mm:less_than_or_equal_to"),
        ({"flipper_length_mm": None}, "flipper_length_mm:not_nullable"),
        ({"species": "Emperor penguin (Aptenodytes forsteri)"}, "species:isin"),
        ({"island": "Anvers"}, "island:isin"),
        ({"sex": "M?"}, "sex:isin"),
        ({"clutch_completion": "maybe"}, "clutch_completion:"),
        ({"date_egg": "not a date"}, "date_egg:not_nullable"),
    ],
)
def test_the_clean_contract_quarantines_an_impossible_penguin(override: dict[str, object], failed_check: str) -> None:
    result = _clean_gate(_raw({}, override), max_share=0.5)

    assert result.valid["penguin_id"].tolist() == ["PAL0708-Adelie-1"]
    assert result.quarantined["sample_number"].tolist() == [2]
    assert failed_check in result.quarantined["_failed_checks"].iloc[0]


def test_the_clean_contract_quarantines_every_copy_of_a_repeated_key() -> None:
    raw = pd.DataFrame([_raw_row(), _raw_row(body_mass_g=3800.0), _raw_row(sample_number=2)])

    result = _clean_gate(raw, max_share=0.7)

    assert result.valid["penguin_id"].tolist() == ["PAL0708-Adelie-2"]
    assert result.quarantined["penguin_id"].tolist() == ["PAL0708-Adelie-1"] * 2


def test_a_clean_gate_above_its_cap_fails_naming_the_check() -> None:
    with pytest.raises(DataQualityError, match=r"quality gate 'clean' failed: .*body_mass_g:not_nullable \(1 rows\)"):
        _clean_gate(_raw({}, {"body_mass_g": None}), max_share=QUARANTINE_CAP)


# -------------------------------------------------------------------------------- the features
def test_the_feature_table_passes_the_feature_contract(etl_features: pd.DataFrame) -> None:
    result = apply_gate(etl_features, PenguinFeatures, gate="features", max_quarantine_share=0.0)

    assert result.report.rows_out == len(etl_features) == 342
    assert list(etl_features.columns) == list(PenguinFeatures.to_schema().columns)
    assert list(etl_features.columns) == [*PROBLEM.key_columns, PROBLEM.target, *PROBLEM.feature_columns]
    assert etl_features["penguin_id"].is_unique


def test_build_features_of_hand_made_rows() -> None:
    clean = pd.DataFrame(
        {
            "penguin_id": ["PAL0708-Adelie-1", "PAL0910-Gentoo-7"],
            "species": ["Adelie", "Gentoo"],
            "island": ["Torgersen", "Biscoe"],
            "sex": ["female", None],
            "clutch_completion": [True, False],
            "culmen_length_mm": [39.5, 47.0],
            "culmen_depth_mm": [17.4, 15.0],
            "flipper_length_mm": [186.0, 215.0],
            "body_mass_g": [3800.0, 5000.0],
        }
    )

    out = features.build_features(clean)

    assert out["sex"].tolist() == ["female", "unknown"]
    assert out["clutch_completion"].tolist() == ["yes", "no"]
    assert out["flipper_length_mm"].tolist() == [186.0, 215.0]
    assert out["body_mass_g"].tolist() == [3800.0, 5000.0]


def test_build_features_without_the_target_serves_requests(clean: pd.DataFrame) -> None:
    out = features.build_features(clean.drop(columns=[PROBLEM.target]).head(3))

    assert list(out.columns) == [*PROBLEM.key_columns, *PROBLEM.feature_columns]


def test_the_clean_table_holds_the_leakage_columns_and_the_feature_table_none(
    clean: pd.DataFrame, etl_features: pd.DataFrame
) -> None:
    assert set(LEAKAGE_COLUMNS) <= set(clean.columns)

    assert not set(LEAKAGE_COLUMNS) & set(etl_features.columns)


@pytest.mark.parametrize("leak", LEAKAGE_COLUMNS)
def test_the_feature_contract_rejects_a_leakage_column(etl_features: pd.DataFrame, leak: str) -> None:
    leaking = etl_features.head(10).assign(**{leak: 1.0})

    with pytest.raises(DataQualityError, match=rf"column_in_schema:{leak}") as raised:
        apply_gate(leaking, PenguinFeatures, gate="features", max_quarantine_share=0.0)

    assert "no_leakage_columns" in str(raised.value)


# ---------------------------------------------------------------------------------- the request
def _assert_same_features(served: pd.DataFrame, trained: pd.DataFrame) -> None:
    expected = trained.set_index("penguin_id").loc[served["penguin_id"], PROBLEM.feature_columns]
    pd.testing.assert_frame_equal(
        served[PROBLEM.feature_columns].reset_index(drop=True), expected.reset_index(drop=True)
    )


def test_no_training_serving_skew_for_every_clean_penguin(clean: pd.DataFrame, etl_features: pd.DataFrame) -> None:
    records = PROBLEM.requests_for(clean)

    served = PROBLEM.request_features(records, PROBLEM.load_serving_context())

    assert len(served) == len(clean)
    assert PROBLEM.target not in served.columns
    _assert_same_features(served, etl_features)


def test_requests_in_the_sources_spelling_get_the_same_features(raw: pd.DataFrame, etl_features: pd.DataFrame) -> None:
    """The serving frame reads the file's spellings (long species names, MALE, "." for no sex) as the
    cleaning rules do. (The API's request model takes the canonical names only: its enums.)"""
    rows = raw.dropna(subset=["Body Mass (g)"]).groupby(["Species", "Sex"], dropna=False).head(1)
    records = [
        {
            "penguin_id": f"{row['studyName']}-{row['Species'].split()[0]}-{row['Sample Number']}",
            "species": row["Species"],
            "island": row["Island"].upper(),
            "sex": "." if pd.isna(row["Sex"]) else row["Sex"],
            "culmen_length_mm": row["Culmen Length (mm)"],
            "culmen_depth_mm": row["Culmen Depth (mm)"],
            "flipper_length_mm": row["Flipper Length (mm)"],
            "clutch_completion": row["Clutch Completion"] == "Yes",
        }
        for _, row in rows.iterrows()
    ]
    assert {r["sex"] for r in records} == {"MALE", "FEMALE", "."}

    served = PROBLEM.request_features(records, PROBLEM.load_serving_context())

    _assert_same_features(served, etl_features)


def test_request_records_round_trip_through_the_request_model(clean: pd.DataFrame) -> None:
    records = serving.request_records(clean)

    assert len(records) == len(clean)
    for record, (_, row) in zip(records, clean.iterrows(), strict=True):
        again = serving.PenguinRequest.model_validate(record).model_dump(mode="json")
        assert again == record
        assert record["penguin_id"] == row["penguin_id"]
        assert record["sex"] == (None if pd.isna(row["sex"]) else row["sex"])
        assert record["flipper_length_mm"] == row["flipper_length_mm"]
        assert record["clutch_completion"] is bool(row["clutch_completion"])


def test_canary_records_are_valid_real_penguins_of_every_category(etl_features: pd.DataFrame) -> None:
    records = serving.canary_records()

    assert all(serving.PenguinRequest.model_validate(record) for record in records)
    assert {(r["species"], r["island"]) for r in records} == {
        ("Adelie", "Biscoe"),
        ("Adelie", "Dream"),
        ("Adelie", "Torgersen"),
        ("Chinstrap", "Dream"),
        ("Gentoo", "Biscoe"),
    }
    assert None in {r["sex"] for r in records}
    _assert_same_features(PROBLEM.request_features(records, PROBLEM.load_serving_context()), etl_features)


@pytest.mark.parametrize("outcome", [PROBLEM.target, *LEAKAGE_COLUMNS])
def test_the_request_model_refuses_the_target_and_the_lab_results(outcome: str) -> None:
    example = serving.PenguinRequest.model_config["json_schema_extra"]["example"]

    with pytest.raises(pydantic.ValidationError, match=rf"{outcome}\n  Extra inputs are not permitted"):
        serving.PenguinRequest.model_validate({**example, outcome: 1.0})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"flipper_length_mm": 120.0}, "flipper_length_mm\n  Input should be greater than or equal to 150"),
        ({"culmen_depth_mm": 31.0}, "culmen_depth_mm\n  Input should be less than or equal to 30"),
        ({"species": "adelie"}, "species\n  Input should be 'Adelie', 'Chinstrap' or 'Gentoo'"),
        ({"island": "Anvers"}, "island\n  Input should be 'Biscoe', 'Dream' or 'Torgersen'"),
        ({"sex": "."}, "sex\n  Input should be 'male' or 'female'"),
        ({"culmen_depth_mm": True}, "culmen_depth_mm\n  Input should be a valid number"),
        ({"clutch_completion": 1}, "clutch_completion\n  Input should be a valid boolean"),
        ({"clutch_completion": "perhaps"}, "clutch_completion\n  Input should be a valid boolean"),
    ],
)
def test_the_request_model_refuses_impossible_values(override: dict[str, object], message: str) -> None:
    example = serving.PenguinRequest.model_config["json_schema_extra"]["example"]

    with pytest.raises(pydantic.ValidationError, match=message):
        serving.PenguinRequest.model_validate({**example, **override})


@pytest.mark.parametrize("override", [{}, {"sex": None}, {"species": "Gentoo", "island": "Biscoe", "sex": "female"}])
def test_the_request_model_takes_the_known_categories(override: dict[str, object]) -> None:
    example = serving.PenguinRequest.model_config["json_schema_extra"]["example"]

    assert serving.PenguinRequest.model_validate({**example, **override})


def test_serving_frame_leaves_the_request_frame_as_it_was() -> None:
    requests = PROBLEM.request_frame([{**serving.canary_records()[0], "species": "adelie", "sex": "MALE"}])
    before = requests.copy()

    served = serving.serving_frame(requests, PROBLEM.load_serving_context())

    pd.testing.assert_frame_equal(requests, before)
    assert served[["species", "sex"]].values.tolist() == [["Adelie", "male"]]


def test_the_json_fast_path_covers_the_penguin_request_model() -> None:
    """The request model stays simple enough to be checked column by column (no pydantic validators)."""
    validator = ColumnarValidator(serving.PenguinRequest)
    records = serving.canary_records()

    assert validator.enabled, validator.reason
    columns = validator.columns(records)
    assert columns is not None
    pd.testing.assert_frame_equal(stack_columns([columns]), PROBLEM.request_frame(records))
