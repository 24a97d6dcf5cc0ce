"""statsd_exporter's mapping file (``monitoring/statsd/mapping.yml``), as far as the StatsD bridge reads it.

What the file uses, validated and applied the way statsd_exporter 0.28 does it (``pkg/mapper``): glob
matches (``match`` split on ``.``, each ``*`` one whole component; the first matching mapping wins),
``$1``/``${1}`` captures in ``name`` and ``labels``, ``help``, ``scale``, ``action: drop`` and
histogram buckets, from the mapping or the ``defaults``. Anything else statsd_exporter knows (regex
matches, ``ttl``, summaries, ``match_metric_type``, ``honor_labels``...) is refused, so that the file
cannot mean one thing to the bridge and another to statsd_exporter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# statsd_exporter's validation rules (pkg/mapper/mapper.go): a file accepted here is accepted there.
_STATSD_FIRST = r"[a-zA-Z_]([a-zA-Z0-9_\-])*"
_STATSD_NEXT = r"[a-zA-Z0-9_]([a-zA-Z0-9_\-])*"
_TEMPLATE = r"(\$\{?\d+\}?)"
METRIC_LINE_RE = re.compile(rf"^(\*|{_STATSD_FIRST})(\.\*|\.{_STATSD_NEXT})*$")
METRIC_NAME_RE = re.compile(rf"^([a-zA-Z_]|{_TEMPLATE})([a-zA-Z0-9_]|{_TEMPLATE})*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")
TEMPLATE_CAPTURE_RE = re.compile(r"\$\{?([a-zA-Z0-9_\$]+)\}?")

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # prometheus.DefBuckets
HISTOGRAM = "histogram"

# match_type, ttl and observer_type are read only to refuse the values this bridge does not implement.
DEFAULTS_KEYS = {"histogram_options", "match_type", "ttl", "observer_type"}
MAPPING_KEYS = {"match", "name", "labels", "help", "action", "scale", *DEFAULTS_KEYS}


class MappingError(ValueError):
    """The mapping file is invalid, or asks for a feature this bridge does not implement."""


def expand(template: str, captures: list[str]) -> str:
    """``$1``/``${1}`` replaced as statsd_exporter's ``TemplateFormatter`` does: a missing capture is ""."""

    def capture(found: re.Match[str]) -> str:
        reference = found.group(1)
        return captures[int(reference) - 1] if reference.isdigit() and 0 < int(reference) <= len(captures) else ""

    return TEMPLATE_CAPTURE_RE.sub(capture, template)


@dataclass
class Mapping:
    """One ``mappings:`` entry."""

    match: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    action: str = "map"
    help: str = ""
    scale: float | None = None
    buckets: tuple[float, ...] | None = None  # None: the defaults' buckets
    regex: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pattern = r"\.".join("([^.]*)" if part == "*" else re.escape(part) for part in self.match.split("."))
        self.regex = re.compile(f"^{pattern}$")


def _check(where: str, data: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise MappingError(f"{where}: not a mapping")
    unknown = sorted(set(data) - allowed)
    problems = [
        (bool(unknown), f"unknown field(s) {unknown} (invalid for statsd_exporter, or not implemented here)"),
        (data.get("match_type") not in (None, "", "glob"), "only glob matching is implemented by this bridge"),
        (bool(data.get("ttl")), "ttl is not implemented by this bridge (metrics never expire here)"),
        (
            data.get("observer_type") not in (None, "", HISTOGRAM),
            f"invalid observer type {data.get('observer_type')!r}",
        ),
    ]
    for failed, message in problems:
        if failed:
            raise MappingError(f"{where}: {message}")
    return data


def _buckets(where: str, options: Any) -> tuple[float, ...] | None:
    buckets = _check(f"{where}.histogram_options", options, {"buckets"}).get("buckets") if options else None
    return tuple(sorted(float(b) for b in buckets)) if buckets else None


def _mapping(index: int, raw: Any) -> Mapping:
    """One ``mappings:`` entry, validated as statsd_exporter validates it."""
    where = f"mappings[{index}] ({raw.get('match')!r})" if isinstance(raw, dict) else f"mappings[{index}]"
    labels = _check(where, raw, MAPPING_KEYS).get("labels") or {}
    name, match, action = str(raw.get("name") or ""), str(raw.get("match") or ""), raw.get("action") or "map"
    invalid = [key for key in labels if not LABEL_NAME_RE.match(str(key))]
    problems = [
        (bool(invalid), f"invalid label key: {invalid}"),
        (not name, "metric mapping didn't set a metric name"),
        (not METRIC_NAME_RE.match(name), f"metric name {name!r} is not valid"),
        (not METRIC_LINE_RE.match(match), f"invalid match: {match}"),
        (action not in {"map", "drop"}, f"invalid action type {action!r}"),
    ]
    for failed, message in problems:
        if failed:
            raise MappingError(f"{where}: {message}")
    scale = float(raw["scale"]) if raw.get("scale") is not None else None
    labels = {str(k): str(v) for k, v in labels.items()}
    buckets = _buckets(where, raw.get("histogram_options"))
    return Mapping(match, name, labels, action, str(raw.get("help") or ""), scale, buckets)


class MetricMapper:
    """The mapping file, applied the way statsd_exporter applies it (see the module doc for the subset)."""

    def __init__(self, mappings: list[Mapping], buckets: tuple[float, ...] = DEFAULT_BUCKETS):
        self.mappings = mappings
        self.buckets = buckets  # for a histogram whose mapping sets none, and for unmapped timers

    @classmethod
    def from_file(cls, path: str | Path) -> MetricMapper:
        return cls.from_yaml(Path(path).read_text())

    @classmethod
    def from_yaml(cls, text: str) -> MetricMapper:
        data = _check("top level", yaml.safe_load(text) or {}, {"defaults", "mappings"})
        defaults = _check("defaults", data.get("defaults") or {}, DEFAULTS_KEYS)
        mappings = [_mapping(index, raw) for index, raw in enumerate(data.get("mappings") or [])]
        if defaults.get("observer_type") != HISTOGRAM:  # statsd_exporter would observe timers into summaries
            raise MappingError("defaults.observer_type must be histogram: this bridge implements no summaries")
        return cls(mappings, _buckets("defaults", defaults.get("histogram_options")) or DEFAULT_BUCKETS)

    def get_mapping(self, name: str) -> tuple[Mapping, dict[str, str]] | None:
        """The first mapping matching ``name``, with its labels filled in."""
        for mapping in self.mappings:
            found = mapping.regex.match(name)
            if found is not None:
                return mapping, {key: expand(value, list(found.groups())) for key, value in mapping.labels.items()}
        return None

    def metric_name(self, mapping: Mapping, statsd_name: str) -> str:
        found = mapping.regex.match(statsd_name)
        return expand(mapping.name, list(found.groups()) if found else [])
