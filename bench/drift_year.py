"""Seasonal drift on a full-year replay: the monitor's drift decision for every week of 2013.

The `monitor` DAG compares the newest `MLP_DRIFT_WINDOW_DAYS` (7) days with the champion's training
reference and requests a retrain when the share of drifted features (Evidently, PSI >= 0.25 per
feature) reaches `MLP_DRIFT_SHARE_THRESHOLD` (30%). This bench replays that decision week by week,
without Airflow or MLflow, calling what the monitor calls (include/mlpipeline/monitoring/drift.py):
`current_window` for the newest days, `window_reference` (the body of `reference_frame`) for the
reference, `drift_report` for the scores, and the monitor's rule (share >= threshold). The lake is
built in-process by the steps the `etl` and `features` DAGs call (`extract_source`,
`transform_partition`, `build_feature_partition`), with the 2013 dates as logical dates (the replay
maps each day onto itself). Thresholds and windows come from the settings (MLP_* variables).

The reference is emulated: the monitor reads the champion's window from its MLflow run, here the
champion is assumed to have been trained by `select_window`, as the train DAG does:

- **rolling** (first table): before each week, a champion trained on the last
  `MLP_TRAIN_WINDOW_DAYS` (60) feature days up to the day before the week. Its reference is that
  window without its 5 test days (the problem's split): 55 days ending 6 days before the week. This is
  the freshest champion the pipeline can have (train runs after every ETL day and is promoted
  only when it wins), so these shares are the least drift the monitor can see.
- **retrain cycle** (second table): the champion changes only when the monitor requests a retrain
  (as if no scheduled challenger ever beat it by the promotion margin). The drift retrain trains on
  the last `MLP_RETRAIN_WINDOW_DAYS` (30) feature days up to the monitored day, as the train DAG does
  on `retrain_requested`, and is assumed promoted; from the next week on, the monitor compares with
  its reference (20 train + 5 validation days). The cycle is also replayed with 60-day retrains
  (`MLP_TRAIN_WINDOW_DAYS`, a full-size window); `--retrain-window-days` picks other windows.

The first week starts when the first champion of a fresh `make run` would exist:
`MLP_BOOTSTRAP_DAYS` + 1 (36) days after `--start`; until 60 days exist, the window holds every day
so far. The monitor runs after every ETL day on the 7 days up to it; the bench samples it once a
week (the run of each week's last day, so the weeks do not overlap). Only the newest-days comparison
is replayed: there is no served traffic, hence no served-inputs drift, and no live ROC AUC check in
the decisions (the monitor's two other retrain reasons; `--live` measures it, without feeding it back).

`--live` adds live performance to the retrain cycles: each champion is actually fitted with
`training.fit_candidate` (one family, `--live-candidate`, default `hist_gradient_boosting`) on its
window, split as the train DAG splits it (`load_training_set`), and scores the flights of every
week it serves (the week's feature partitions, outcomes known later): ROC AUC, log loss and share
late, beside its own offline test ROC AUC and the settings' `MLP_LIVE_AUC_DROP` limit. A champion
serves from the week after the retrain that produced it, so it never sees the weeks it scores. A
**never retrain** champion (the first one, kept all year) is scored on the same weeks, to show what
retraining buys. Those weeks are reported, not fed back: the replayed decisions stay drift-only.

    python bench/drift_year.py [--lake DIR] [--start 2013-01-01] [--end 2013-12-31]
                               [--retrain-window-days N] [--json FILE]
                               [--live [--live-candidate NAME]]

With `--lake DIR` the lake is kept there and reused (only missing feature days are built).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import shutil
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from include.mlpipeline.core.problem import ProblemSpec, load_problem
from include.mlpipeline.core.settings import Settings
from include.mlpipeline.data import etl
from include.mlpipeline.data.lake import Lake
from include.mlpipeline.data.quality import DataQualityError
from include.mlpipeline.ml import training
from include.mlpipeline.ml.candidates import problem_candidates
from include.mlpipeline.ml.metrics import evaluate
from include.mlpipeline.ml.window import TrainingWindow, load_training_set, select_window
from include.mlpipeline.monitoring import drift

# New York weather of 2013 a replay of that year should show, from public weather reports (dates of
# multi-day events approximate); the summary prints the data's own daily cancelled share beside each.
KNOWN_EVENTS = [
    ("2013-01-22", "2013-01-24", "Arctic cold wave"),
    ("2013-02-08", "2013-02-09", 'blizzard "Nemo"'),
    ("2013-03-06", "2013-03-08", "March nor'easter"),
    ("2013-06-07", "2013-06-07", "remnants of tropical storm Andrea"),
    ("2013-06-24", "2013-07-31", "summer thunderstorm season"),
    ("2013-07-14", "2013-07-20", "heat wave"),
    ("2013-11-26", "2013-11-27", "Thanksgiving storm"),
    ("2013-12-08", "2013-12-17", "December snow (8-10, 14-15, 17 Dec)"),
    ("2013-12-30", "2013-12-31", "no weather data after 30 Dec 18:00 (a gap, not weather)"),
]


def training_window_days(settings: Any) -> int:
    """The training window the pipeline would use: the setting, else the problem's split."""
    from include.mlpipeline.ml.window import effective_split

    return effective_split(load_problem(), settings).window_days or 60


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


# ----------------------------------------------------------------------------------- the lake
def build_lake(
    lake: Lake, days: list[dt.date], *, problem: ProblemSpec, settings: Settings, chunk: int = 31
) -> dict[str, Any]:
    """Extract, clean and build the features of every day without a feature partition yet."""
    have = set(lake.partitions(etl.FEATURES))
    todo = [d for d in days if d not in have]
    timing = {"extract_s": 0.0, "clean_s": 0.0, "features_s": 0.0}
    failed: dict[str, str] = {}
    for i in range(0, len(todo), chunk):
        part = todo[i : i + chunk]
        started = time.monotonic()
        for source in problem.sources:
            etl.extract_source(source.name, part, problem=problem, lake=lake, settings=settings)
        timing["extract_s"] += time.monotonic() - started
        for day in part:
            try:
                started = time.monotonic()
                summary = etl.transform_partition(day, problem=problem, lake=lake, settings=settings)
                timing["clean_s"] += time.monotonic() - started
                if summary["status"] != "published":
                    failed[day.isoformat()] = summary["status"]
                    continue
                started = time.monotonic()
                etl.build_feature_partition(day, problem=problem, lake=lake, settings=settings)
                timing["features_s"] += time.monotonic() - started
            except DataQualityError as error:  # the DAG would fail that day; the replay goes on without it
                failed[day.isoformat()] = str(error)[:200]
        print(f"  lake: built {min(i + chunk, len(todo))}/{len(todo)} days (up to {part[-1]})", flush=True)
    return {"built": len(todo), "cached": len(days) - len(todo), "failed": failed, **timing}


def daily_outcomes(lake: Lake, days: list[dt.date]) -> pd.DataFrame:
    """Flights, late share and cancelled share per day (from the clean partitions)."""
    have = set(lake.partitions(etl.CLEAN))
    rows = []
    for day in days:
        if day in have:
            clean = lake.read(etl.CLEAN, day, columns=["is_delayed", "cancelled"])
            rows.append({"day": day, "flights": len(clean), **clean.mean().to_dict()})
    return pd.DataFrame(rows).set_index("day")


# ------------------------------------------------------------------------------- the monitor
def champion_window(newest: dt.date, window_days: int, *, lake: Lake, settings: Settings) -> TrainingWindow:
    """The window a champion trained after ``newest`` was published would have (train DAG's select_window)."""
    return select_window(newest, window_days=window_days, lake=lake, settings=settings)


def reference_of(window: TrainingWindow, *, lake: Lake, problem: ProblemSpec) -> pd.DataFrame:
    """What ``drift.reference_frame`` reads for a champion with this window (its window start to test start)."""
    return drift.window_reference(window.days[0], window.test_days[0], lake=lake, problem=problem)


def check_week(
    monitor_day: dt.date,
    window: TrainingWindow,
    reference: pd.DataFrame,
    *,
    lake: Lake,
    problem: ProblemSpec,
    settings: Settings,
) -> dict[str, Any]:
    """The monitor's newest-days comparison for the ETL run of ``monitor_day``, and its decision."""
    current = drift.current_window([monitor_day.isoformat()], settings.drift_window_days, lake=lake, problem=problem)
    _, scores, drifted, share = drift.drift_report(reference, current, drift.monitored_features(problem), problem)
    return {
        "monitor_day": monitor_day.isoformat(),
        "week_start": (monitor_day - dt.timedelta(days=settings.drift_window_days - 1)).isoformat(),
        "reference": [window.days[0], window.validation_days[-1]],
        "reference_days": len(window.train_days) + len(window.validation_days),
        "rows": len(current),
        "reference_rows": len(reference),
        "drift_share": share,
        "drifted": sorted(drifted, key=lambda c: -scores[c]),
        "scores": scores,
        "retrain": share >= settings.drift_share_threshold,  # the monitor's rule (monitor())
        "temp_shift": float(current["temp"].mean() - reference["temp"].mean()),
    }


class LiveReplay:
    """Champions actually fitted (``training.fit_candidate``) and scored on the weeks they serve.

    One fit per distinct window (the first champion is shared by every cycle and by the never-retrain
    champion); the week's flights are read once from the feature partitions, which hold the outcome.
    """

    def __init__(self, candidate: str, *, lake: Lake, problem: ProblemSpec, settings: Settings) -> None:
        self.candidate, self.lake, self.problem, self.settings = candidate, lake, problem, settings
        self.models: dict[tuple[str, ...], dict[str, Any]] = {}
        self.frames: dict[dt.date, pd.DataFrame] = {}
        self.first: TrainingWindow | None = None
        self.never: list[dict[str, Any]] = []  # the first champion, kept all year
        self.fit_s = self.score_s = 0.0

    def champion(self, window: TrainingWindow) -> dict[str, Any]:
        """The candidate fitted on this window as the train DAG fits it (train days; threshold on validation)."""
        key = tuple(window.days)
        if key not in self.models:
            started = time.monotonic()
            data = load_training_set(window, problem=self.problem, lake=self.lake)
            fitted = training.fit_candidate(self.candidate, data, problem=self.problem, seed=self.settings.random_seed)
            self.models[key] = {"fitted": fitted, "train_rows": len(data.train), "fit_s": time.monotonic() - started}
            self.fit_s += time.monotonic() - started
        return self.models[key]

    def flights(self, monitor_day: dt.date) -> pd.DataFrame:
        """The week's flights with their outcome: feature partitions of the monitored week."""
        if monitor_day not in self.frames:
            first = monitor_day - dt.timedelta(days=self.settings.drift_window_days - 1)
            days = [d for d in self.lake.partitions(etl.FEATURES) if first <= d <= monitor_day]
            columns = [*self.problem.feature_columns, self.problem.target]
            self.frames = {monitor_day: self.lake.read_many(etl.FEATURES, days, columns=columns)}  # keep one week
        return self.frames[monitor_day]

    def score(self, window: TrainingWindow, monitor_day: dt.date) -> dict[str, Any]:
        """Live metrics of the champion of ``window`` on the week ending ``monitor_day``, and its offline ones."""
        fitted = self.champion(window)["fitted"]
        started = time.monotonic()
        week = self.flights(monitor_day)
        proba = fitted.pipeline.predict_proba(week[self.problem.feature_columns])[:, 1]
        live = evaluate(week[self.problem.target].to_numpy(), proba, fitted.threshold)
        self.score_s += time.monotonic() - started
        week_start = monitor_day - dt.timedelta(days=self.settings.drift_window_days - 1)
        return {
            "candidate": self.candidate,
            "trained_on": [window.days[0], window.days[-1]],
            "window_days": len(window.days),
            "age_days": (week_start - dt.date.fromisoformat(window.days[-1])).days,
            "threshold": fitted.threshold,
            "offline": {k: fitted.test[k] for k in ("roc_auc", "log_loss", "positive_rate")},
            "live": {k: live[k] for k in ("roc_auc", "log_loss", "positive_rate", "f1", "rows")}
            | {"mean_probability": float(proba.mean())},
            "auc_drop": fitted.test["roc_auc"] - live["roc_auc"],
        }


def replay(
    monitor_days: list[dt.date],
    *,
    lake: Lake,
    problem: ProblemSpec,
    settings: Settings,
    retrain_windows: list[int],
    live: LiveReplay | None = None,
) -> tuple[list[dict[str, Any]], dict[int, list[dict[str, Any]]], int]:
    """A champion retrained before every week, and (per retrain window) one replaced only on drift retrains.

    With ``live``, each retrain-cycle week also gets the live metrics of the champion serving it
    (``week["live"]``), and ``live.never`` those of the first champion, never replaced.

    Returns:
        The rolling weeks, the retrain-cycle weeks per retrain window, and how many comparisons ran.
    """
    comparisons = 0
    rolling: list[dict[str, Any]] = []
    cycles: dict[int, list[dict[str, Any]]] = {days: [] for days in retrain_windows}
    champions: dict[int, tuple[TrainingWindow, pd.DataFrame]] = {}
    for monitor_day in monitor_days:
        started = time.monotonic()
        eve = monitor_day - dt.timedelta(days=settings.drift_window_days)  # the day before the week
        fresh = champion_window(eve, training_window_days(settings), lake=lake, settings=settings)
        fresh_reference = reference_of(fresh, lake=lake, problem=problem)
        rolling.append(check_week(monitor_day, fresh, fresh_reference, lake=lake, problem=problem, settings=settings))
        comparisons += 1
        for days, cycle in cycles.items():
            window, reference = champions.setdefault(days, (fresh, fresh_reference))  # the first champion: shared
            if window.days == fresh.days:  # the same champion as the rolling one: the same comparison
                week = dict(rolling[-1])
            else:
                week = check_week(monitor_day, window, reference, lake=lake, problem=problem, settings=settings)
                comparisons += 1
            week["champion_trained_on"] = [window.days[0], window.days[-1]]
            if live:  # the champion served this week; a retrain it requests serves from the next one
                week["live"] = live.score(window, monitor_day)
            cycle.append(week)
            if week["retrain"]:  # train on retrain_requested: the last `days` feature days up to the monitored day
                retrained = champion_window(monitor_day, days, lake=lake, settings=settings)
                champions[days] = (retrained, reference_of(retrained, lake=lake, problem=problem))
        if live:
            live.first = live.first or fresh
            live.never.append(live.score(live.first, monitor_day))
        cycle_shares = ", ".join(f"{days} d {c[-1]['drift_share']:.0%}" for days, c in cycles.items())
        if live:
            cycle_shares += "; live ROC AUC " + ", ".join(
                f"{days} d {c[-1]['live']['live']['roc_auc']:.3f}" for days, c in cycles.items()
            )
            cycle_shares += f", never retrained {live.never[-1]['live']['roc_auc']:.3f}"
        print(
            f"  week {rolling[-1]['week_start']}: rolling {rolling[-1]['drift_share']:.0%}; retrain cycle "
            f"{cycle_shares} ({time.monotonic() - started:.1f} s)",
            flush=True,
        )
    return rolling, cycles, comparisons


# ---------------------------------------------------------------------------------- printing
def short(day: str | dt.date) -> str:
    return pd.Timestamp(day).strftime("%b %d")


def events_in(start: str, end: str) -> list[str]:
    return [label for first, last, label in KNOWN_EVENTS if first <= end and last >= start]


def week_end(week: dict[str, Any]) -> str:
    return week["monitor_day"]


def top_features(week: dict[str, Any], n: int = 4) -> str:
    if not week["drifted"]:
        return "-"
    shown = ", ".join(f"{c} {week['scores'][c]:.2f}" for c in week["drifted"][:n])
    more = len(week["drifted"]) - n
    return f"{shown}{f' (+{more})' if more > 0 else ''}"


def outcome_of(outcomes: pd.DataFrame, start: str, end: str) -> tuple[float, float, str]:
    """Late share of the week, and its worst day by cancelled share."""
    week = outcomes.loc[dt.date.fromisoformat(start) : dt.date.fromisoformat(end)]
    late = float((week["is_delayed"] * week["flights"]).sum() / week["flights"].sum())
    worst = week["cancelled"].idxmax()
    return late, float(week["cancelled"].max()), short(worst)


def print_rolling(rolling: list[dict[str, Any]], outcomes: pd.DataFrame, settings: Settings) -> None:
    print(
        f"\n### Rolling champion (retrained on the last {training_window_days(settings)} days before each week)\n\n"
        "| week | reference (train + validation days) | flights | late | worst day (cancelled) | Δ temp °F "
        "| drift share | top drifted features (PSI) | retrain | known events |\n"
        "| --- | --- | ---: | ---: | --- | ---: | ---: | --- | :---: | --- |"
    )
    for w in rolling:
        late, cancelled, worst = outcome_of(outcomes, w["week_start"], week_end(w))
        n = len(w["scores"])
        print(
            f"| {short(w['week_start'])}-{short(week_end(w))} "
            f"| {short(w['reference'][0])}-{short(w['reference'][1])} ({w['reference_days']} d) "
            f"| {w['rows']:,} | {late:.0%} | {worst} ({cancelled:.0%}) | {w['temp_shift']:+.1f} "
            f"| {w['drift_share']:.0%} ({len(w['drifted'])}/{n}) | {top_features(w)} "
            f"| {'**yes**' if w['retrain'] else 'no'} | {'; '.join(events_in(w['week_start'], week_end(w)))} |"
        )


def print_cycles(cycles: dict[int, list[dict[str, Any]]]) -> None:
    """One row per week; per retrain window: the champion's reference, its age, the drift share, the decision."""
    heads = " | ".join(f"{d}-day retrain: reference | age | drift share | retrain" for d in cycles)
    print(
        "\n### Retrain cycle (the champion is replaced only when the monitor requests a retrain)\n\n"
        f"| week | {heads} |\n| --- |" + " --- | ---: | ---: | :---: |" * len(cycles)
    )
    for weeks in zip(*cycles.values(), strict=True):
        cells = []
        for w in weeks:
            age = (dt.date.fromisoformat(w["week_start"]) - dt.date.fromisoformat(w["reference"][1])).days
            cells.append(
                f"{short(w['reference'][0])}-{short(w['reference'][1])} | {age} d | {w['drift_share']:.0%} "
                f"| {'**yes**' if w['retrain'] else 'no'}"
            )
        print(f"| {short(weeks[0]['week_start'])}-{short(week_end(weeks[0]))} | {' | '.join(cells)} |")


def print_summary(
    rolling: list[dict[str, Any]],
    cycles: dict[int, list[dict[str, Any]]],
    outcomes: pd.DataFrame,
    settings: Settings,
    timing: dict[str, float],
) -> None:
    threshold = settings.drift_share_threshold
    flagged = [w for w in rolling if w["retrain"]]
    calm = [w for w in rolling if not w["retrain"]]
    shares = sorted(w["drift_share"] for w in rolling)
    print(f"\n### Summary (threshold: {threshold:.0%} of {len(rolling[0]['scores'])} features at PSI >= 0.25)\n")
    print(
        f"- Rolling champion: {len(flagged)} of {len(rolling)} weeks request a retrain. Drift share over all weeks: "
        f"median {shares[len(shares) // 2]:.0%}, range {shares[0]:.0%}-{shares[-1]:.0%}; "
        + (
            f"unflagged weeks {min(w['drift_share'] for w in calm):.0%}-{max(w['drift_share'] for w in calm):.0%}."
            if calm
            else "no unflagged weeks."
        )
    )
    for w in flagged:
        events = events_in(w["week_start"], week_end(w))
        late, cancelled, worst = outcome_of(outcomes, w["week_start"], week_end(w))
        print(
            f"  - {short(w['week_start'])}-{short(week_end(w))}: {w['drift_share']:.0%}, "
            f"Δ temp {w['temp_shift']:+.1f} °F, late {late:.0%}, worst day {worst} ({cancelled:.0%} cancelled); "
            f"{'; '.join(events) if events else 'no listed event'}"
        )
    print("- Known events and the week containing them (rolling champion):")
    for first, last, label in KNOWN_EVENTS:
        weeks = [w for w in rolling if w["week_start"] <= last and week_end(w) >= first]
        span = outcomes.loc[dt.date.fromisoformat(first) : dt.date.fromisoformat(last)]
        evidence = f"max daily cancelled {span['cancelled'].max():.0%}" if len(span) else "no data"
        if not weeks:
            print(f"  - {first}..{last} {label} ({evidence}): outside the replayed weeks")
            continue
        verdicts = ", ".join(
            f"{short(w['week_start'])} {w['drift_share']:.0%} {'flagged' if w['retrain'] else 'not flagged'}"
            for w in weeks
        )
        print(f"  - {first}..{last} {label} ({evidence}): {verdicts}")
    counts = Counter(c for w in rolling for c in w["drifted"])
    print(
        "- Features drifted most often (weeks, rolling): "
        + ", ".join(f"{c} {k}" for c, k in counts.most_common(8))
        + f"; never: {', '.join(sorted(set(rolling[0]['scores']) - set(counts))) or '-'}"
    )
    for days, cycle in cycles.items():
        retrains = [w for w in cycle if w["retrain"]]
        after = [cycle[i + 1]["drift_share"] for i, w in enumerate(cycle[:-1]) if w["retrain"]]
        ages = [(dt.date.fromisoformat(w["week_start"]) - dt.date.fromisoformat(w["reference"][1])).days for w in cycle]
        print(
            f"- Retrain cycle, {days}-day drift retrains: {len(retrains)} of {len(cycle)} weeks request one "
            f"({', '.join(short(w['week_start']) for w in retrains) or 'none'}); drift share of the weeks that asked "
            f"{_mean([w['drift_share'] for w in retrains])}, of the week after each {_mean(after)}; reference age "
            f"{min(ages)}-{max(ages)} days; longest run without a retrain {_longest_calm(cycle)} weeks."
        )
    print(
        f"- Time: lake {timing['lake_s'] / 60:.1f} min ({timing['built']} days built, {timing['cached']} cached; "
        f"extract {timing['extract_s']:.0f} s, clean {timing['clean_s']:.0f} s, "
        f"features {timing['features_s']:.0f} s), "
        f"drift replay {timing['replay_s'] / 60:.1f} min ({timing['comparisons']} comparisons), "
        f"total {timing['total_s'] / 60:.1f} min."
    )


def print_live(cycles: dict[int, list[dict[str, Any]]], never: list[dict[str, Any]], settings: Settings) -> None:
    """Per retrain window: each week's champion, drift decision, live and offline ROC AUC; the never-retrained one."""
    candidate, first = never[0]["candidate"], never[0]
    for days, cycle in cycles.items():
        print(
            f"\n### Live performance, {days}-day retrain cycle ({candidate}; the week's flights scored by the champion "
            f"serving it; **bold**: live ROC AUC more than {settings.live_auc_drop} below offline)\n\n"
            f"Never retrained: the first champion ({short(first['trained_on'][0])}-{short(first['trained_on'][1])}, "
            f"offline test ROC AUC {first['offline']['roc_auc']:.3f}) kept all year. Age: days from the champion's "
            "newest window day to the week's start.\n\n"
            "| week | flights | late | champion trained on | age | drift share | retrain | live ROC AUC "
            "| live log loss | offline test ROC AUC | live - offline | never retrained: live ROC AUC | log loss |\n"
            "| --- | ---: | ---: | --- | ---: | ---: | :---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        )
        for w, n in zip(cycle, never, strict=True):
            live, offline = w["live"]["live"], w["live"]["offline"]
            gap = live["roc_auc"] - offline["roc_auc"]
            dropped, never_dropped = -gap > settings.live_auc_drop, n["auc_drop"] > settings.live_auc_drop
            trained = w["live"]["trained_on"]
            print(
                f"| {short(w['week_start'])}-{short(week_end(w))} | {live['rows']:,.0f} | {live['positive_rate']:.0%} "
                f"| {short(trained[0])}-{short(trained[1])} ({w['live']['window_days']} d) | {w['live']['age_days']} d "
                f"| {w['drift_share']:.0%} | {'**yes**' if w['retrain'] else 'no'} "
                f"| {_bold(live['roc_auc'], '.3f', dropped)} | {live['log_loss']:.3f} | {offline['roc_auc']:.3f} "
                f"| {_bold(gap, '+.3f', dropped)} | {_bold(n['live']['roc_auc'], '.3f', never_dropped)} "
                f"| {n['live']['log_loss']:.3f} |"
            )


def print_live_summary(
    cycles: dict[int, list[dict[str, Any]]], never: list[dict[str, Any]], settings: Settings, timing: dict[str, Any]
) -> None:
    limit = settings.live_auc_drop
    print(
        f"\n### Live performance summary ({never[0]['candidate']}; live ROC AUC check: a drop of more than {limit} "
        "below the champion's offline test ROC AUC, MLP_LIVE_AUC_DROP)\n"
    )
    series = {f"{days}-day retrain cycle": [w["live"] for w in cycle] for days, cycle in cycles.items()}
    series["never retrained"] = never
    weeks = next(iter(cycles.values()))
    for label, scores in series.items():
        aucs = [s["live"]["roc_auc"] for s in scores]
        offline = [auc for _, auc in sorted({(tuple(s["trained_on"]), s["offline"]["roc_auc"]) for s in scores})]
        low, high = min(range(len(aucs)), key=aucs.__getitem__), max(range(len(aucs)), key=aucs.__getitem__)
        dropped = [i for i, s in enumerate(scores) if s["auc_drop"] > limit]
        shown = ", ".join(
            f"{short(weeks[i]['week_start'])} {aucs[i]:.3f} ({-scores[i]['auc_drop']:+.3f})" for i in dropped[:12]
        )
        print(
            f"- {label}: live ROC AUC min {aucs[low]:.3f} ({short(weeks[low]['week_start'])}), median "
            f"{float(pd.Series(aucs).median()):.3f}, max {aucs[high]:.3f} ({short(weeks[high]['week_start'])}), "
            f"mean {sum(aucs) / len(aucs):.3f}; mean live log loss "
            f"{sum(s['live']['log_loss'] for s in scores) / len(scores):.3f}; offline test ROC AUC "
            + (
                f"{offline[0]:.3f}. "
                if len(offline) == 1
                else f"of its {len(offline)} champions {min(offline):.3f}-{max(offline):.3f}. "
            )
            + f"{len(dropped)} of {len(scores)} weeks more than {limit} below offline"
            + (f": {shown}{f' (+{len(dropped) - 12} more)' if len(dropped) > 12 else ''}." if dropped else ".")
        )
    for days, cycle in cycles.items():
        dropped = [i for i, w in enumerate(cycle) if w["live"]["auc_drop"] > limit]
        flagged = [i for i in dropped if cycle[i]["retrain"]]
        back = [i for i in dropped if i + 1 < len(cycle) and cycle[i + 1]["live"]["auc_drop"] <= limit]
        back_retrained = [i for i in back if cycle[i]["retrain"]]
        after = [i for i, w in enumerate(cycle[:-1]) if w["retrain"]]
        change = [cycle[i + 1]["live"]["live"]["roc_auc"] - cycle[i]["live"]["live"]["roc_auc"] for i in after]
        vs_never = [cycle[i + 1]["live"]["live"]["roc_auc"] - never[i + 1]["live"]["roc_auc"] for i in after]
        print(
            f"- {days}-day cycle, drops: "
            + (
                f"drift also requested a retrain in {len(flagged)} of the {len(dropped)} weeks that dropped "
                f"({', '.join(short(cycle[i]['week_start']) for i in flagged) or 'none'}); the live check alone would "
                f"have asked in {len(dropped) - len(flagged)} more (not replayed: the decisions stay drift-only). The "
                f"next week was back within {limit} of its champion's offline ROC AUC after {len(back)} of them "
                f"({len(back_retrained)} with a retrain between)."
                if dropped
                else f"no week more than {limit} below its champion's offline ROC AUC."
            )
        )
        if after:
            print(
                f"- {days}-day cycle, after its {len(after)} retrains (old champion on the week that asked, new one on "
                f"the next): live ROC AUC rose in {sum(c > 0 for c in change)} of {len(after)}, mean change "
                f"{_signed_mean(change)} (range {min(change):+.3f} to {max(change):+.3f}); the new champion beat the "
                "never-retrained one on "
                f"its first week in {sum(v > 0 for v in vs_never)} of {len(after)}, by {_signed_mean(vs_never)} on "
                "average."
            )
        gaps = [w["live"]["live"]["roc_auc"] - n["live"]["roc_auc"] for w, n in zip(cycle, never, strict=True)]
        losses = [w["live"]["live"]["log_loss"] - n["live"]["log_loss"] for w, n in zip(cycle, never, strict=True)]
        quarters: dict[str, list[float]] = {}
        for w, gap in zip(cycle, gaps, strict=True):
            quarters.setdefault(f"Q{(int(w['week_start'][5:7]) - 1) // 3 + 1}", []).append(gap)
        print(
            f"- {days}-day cycle vs never retrained: live ROC AUC {_signed_mean(gaps)} on average, higher in "
            f"{sum(g > 0 for g in gaps)} of {len(gaps)} weeks; log loss {_signed_mean(losses)} on average. "
            "ROC AUC gap by quarter of the week's start: "
            + ", ".join(f"{q} {_signed_mean(g)} ({len(g)} weeks)" for q, g in sorted(quarters.items()))
            + "."
        )
    print(
        f"- Live time: {timing['live_fits']} fits, {timing['live_fit_s']:.0f} s (part of the replay time), "
        f"scoring {timing['live_score_s']:.0f} s."
    )


def _bold(value: float, spec: str, on: bool) -> str:
    return f"**{value:{spec}}**" if on else f"{value:{spec}}"


def _signed_mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):+.3f}" if values else "n/a"


def _longest_calm(weeks: list[dict[str, Any]]) -> int:
    longest = run = 0
    for w in weeks:
        run = 0 if w["retrain"] else run + 1
        longest = max(longest, run)
    return longest


def _mean(values: list[float]) -> str:
    return f"{sum(values) / len(values):.0%} on average" if values else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", default="2013-01-01", help="first day of the lake")
    parser.add_argument("--end", default="2013-12-31", help="last day of the lake")
    parser.add_argument("--first-week", help="first week's start (default: start + MLP_BOOTSTRAP_DAYS + 1)")
    parser.add_argument(
        "--retrain-window-days",
        type=int,
        nargs="+",
        help="drift retrain windows to replay, one retrain cycle each (default: MLP_RETRAIN_WINDOW_DAYS and "
        "MLP_TRAIN_WINDOW_DAYS, i.e. 30 and 60)",
    )
    parser.add_argument("--lake", type=Path, help="keep the lake in this folder and reuse it (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="write every week's scores here")
    parser.add_argument(
        "--live",
        action="store_true",
        help="fit every retrain-cycle champion and score the weeks it serves (live ROC AUC, log loss, share late), "
        "and a never-retrained champion for comparison",
    )
    parser.add_argument(
        "--live-candidate",
        default="hist_gradient_boosting",
        choices=sorted(problem_candidates(load_problem())),
        help="the candidate family fitted with --live (default: hist_gradient_boosting)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    warnings.filterwarnings("ignore")
    total = time.monotonic()

    folder = args.lake or Path(tempfile.mkdtemp(prefix="mlp-drift-year-"))
    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(lake_uri=f"file://{folder.resolve()}")
    lake, problem = Lake(settings.lake_uri), load_problem()
    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    first_week = (
        dt.date.fromisoformat(args.first_week) if args.first_week else start + dt.timedelta(settings.bootstrap_days + 1)
    )
    retrain_windows = args.retrain_window_days or sorted({settings.retrain_window_days, training_window_days(settings)})
    try:
        print(f"lake {settings.lake_uri}: building {start}..{end}", flush=True)
        started = time.monotonic()
        timing: dict[str, Any] = build_lake(lake, days_between(start, end), problem=problem, settings=settings)
        timing["lake_s"] = time.monotonic() - started
        if timing["failed"]:
            print(f"  days without features: {timing['failed']}")
        outcomes = daily_outcomes(lake, days_between(start, end))

        step = settings.drift_window_days
        monitor_days = [
            first_week + dt.timedelta(days=step - 1 + step * k)
            for k in range((end - first_week).days // step + 1)
            if first_week + dt.timedelta(days=step - 1 + step * k) <= end
        ]
        started = time.monotonic()
        live = LiveReplay(args.live_candidate, lake=lake, problem=problem, settings=settings) if args.live else None
        rolling, cycles, timing["comparisons"] = replay(
            monitor_days, lake=lake, problem=problem, settings=settings, retrain_windows=retrain_windows, live=live
        )
        timing["replay_s"] = time.monotonic() - started
        if live:
            timing.update(live_fits=len(live.models), live_fit_s=live.fit_s, live_score_s=live.score_s)
        timing["total_s"] = time.monotonic() - total

        print(
            f"\nmonitor replay of {len(monitor_days)} weeks, {first_week}..{monitor_days[-1]}: newest "
            f"{settings.drift_window_days} days vs the champion's reference, {len(drift.monitored_features(problem))} "
            f"features, PSI >= {drift.DRIFT_THRESHOLD}, retrain at drift share >= {settings.drift_share_threshold:.0%}"
        )
        print_rolling(rolling, outcomes, settings)
        print_cycles(cycles)
        print_summary(rolling, cycles, outcomes, settings, timing)
        if live:
            print_live(cycles, live.never, settings)
            print_live_summary(cycles, live.never, settings, timing)
        if args.json:
            report = {"rolling": rolling, "retrain_cycle": {str(d): c for d, c in cycles.items()}, "timing": timing}
            if live:
                report["never_retrained"] = live.never
            args.json.write_text(json.dumps(report, indent=1))
    finally:
        if not args.lake:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
