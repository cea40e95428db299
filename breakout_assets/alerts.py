"""Failure and freshness alerts (issue 12): being built."""

from __future__ import annotations


def build_alert_sensors(settings) -> list:
    return []
