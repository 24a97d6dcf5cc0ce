"""The promotion gate (a pure function; no MLflow server involved)."""

from __future__ import annotations

import pytest

from include.mlpipeline.ml.registry import PromotionDecision, decide_promotion

MIN_GAIN = 0.002
MARGIN = 0.02


def _decide(challenger: float, champion: float | None, baseline: float = 0.5) -> PromotionDecision:
    return decide_promotion(challenger, champion, baseline, min_gain=MIN_GAIN, baseline_margin=MARGIN)


def test_first_model_above_the_floor_is_promoted() -> None:
    decision = _decide(0.70, None)

    assert decision.promote is True
    assert decision.reason == "first model: test roc_auc 0.7000 passes the floor 0.5200"
    assert decision.to_dict() == {
        "promote": True,
        "reason": decision.reason,
        "challenger_score": 0.70,
        "champion_score": None,
        "baseline_score": 0.5,
        "metric": "roc_auc",
        "passed_floor": True,
    }


@pytest.mark.parametrize("champion", [None, 0.40])
def test_model_below_the_floor_is_refused_even_without_or_against_a_weak_champion(champion: float | None) -> None:
    decision = _decide(0.51, champion)

    assert decision.promote is False
    assert decision.reason == "below the floor: test roc_auc 0.5100 < baseline 0.5000 + 0.02"


def test_model_exactly_at_the_floor_passes() -> None:
    # binary-exact values, so the boundary is tested and not float rounding
    assert decide_promotion(0.625, None, 0.5, min_gain=MIN_GAIN, baseline_margin=0.125).promote is True
    assert decide_promotion(0.6249, None, 0.5, min_gain=MIN_GAIN, baseline_margin=0.125).promote is False


@pytest.mark.parametrize(
    ("challenger", "champion", "min_gain"),
    [
        pytest.param(0.75, 0.74, MIN_GAIN, id="clear-gain"),
        pytest.param(0.7578125, 0.75, 0.0078125, id="gain-exactly-min-gain"),
    ],
)
def test_challenger_beating_the_champion_by_min_gain_is_promoted(
    challenger: float, champion: float, min_gain: float
) -> None:
    decision = decide_promotion(challenger, champion, 0.5, min_gain=min_gain, baseline_margin=MARGIN)

    assert decision.promote is True
    assert decision.reason.startswith(f"beats the champion: {challenger:.4f} vs {champion:.4f} (+")
    assert decision.champion_score == champion


@pytest.mark.parametrize(
    ("challenger", "champion", "gain"),
    [
        pytest.param(0.75, 0.75, "+0.0000", id="tie"),
        pytest.param(0.751, 0.75, "+0.0010", id="smaller-gain"),
        pytest.param(0.70, 0.75, "-0.0500", id="worse"),
    ],
)
def test_tie_or_smaller_gain_keeps_the_champion(challenger: float, champion: float, gain: str) -> None:
    decision = _decide(challenger, champion)

    assert decision.promote is False
    assert decision.reason == f"does not beat the champion by {MIN_GAIN}: {challenger:.4f} vs {champion:.4f} ({gain})"
