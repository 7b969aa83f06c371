"""Tiny synthetic experiments for runner tests."""

from __future__ import annotations


def tiny_raw(**overrides) -> dict:
    """Two synthetic tasks of 4 train / 4 test images at 32 px, one epoch: seconds per cell."""
    raw = {
        "experiment": "tiny",
        "data": {"synthetic": {"categories": 2, "train": 4, "test": 4, "size": 32},
                 "image_size": 32},
        "model": {"methods": ["stpm"], "backbone": "efficientnet_lite0", "weights": "none",
                  "options": {"hybrid": {"student_width": 16, "student_blocks": [1, 1, 1]}}},
        "train": {"epochs": 1, "batch_size": 4},
        "eval": {"batch_size": 8, "saved_maps_per_task": 2},
        "strategy": {"replay": {"buffer_size": 4}},
    }
    for key, value in overrides.items():
        node = raw
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return raw
