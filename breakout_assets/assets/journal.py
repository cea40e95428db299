"""The trade journal (issue 12): being built."""

from __future__ import annotations


def build_journal_assets(partitions_def, settings) -> list:
    return []
