"""``--option KEY=VALUE`` flags of the commands that build detectors (train-one, bench)."""

from __future__ import annotations

from typing import Any

import yaml

from cl_bench.errors import ConfigError


def parse_options(pairs: list[str]) -> dict[str, Any]:
    """``["weighting=dwa", "student_blocks=[1,1,1]"]`` -> ``{"weighting": "dwa",
    "student_blocks": [1, 1, 1]}``; each value is read as YAML."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {pair!r}: write KEY=VALUE, e.g. weighting=dwa")
        options[key.strip()] = yaml.safe_load(value)
    return options
