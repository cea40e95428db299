"""Sections as the template shows them: columns with their formats, cells as text, and the
sentence an empty section says instead of vanishing ("no closed trades")."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
MISSING = "—"


def money(value) -> str:
    return f"{value:,.2f}"


def dollars(value) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def price(value) -> str:
    return f"{value:,.2f}"


def r_multiple(value) -> str:
    return f"{value:+.2f}R"


def percent(value) -> str:
    return f"{100 * value:.1f}%"


def ratio(value) -> str:
    return f"{value:.3f}"


def integer(value) -> str:
    return f"{int(value):,d}"


def text(value) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z").strip()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    fmt: Callable[[object], str] = text

    @property
    def text(self) -> bool:
        return self.fmt is text


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    columns: Sequence[Column]
    frame: pd.DataFrame
    empty: str
    note: str | None = None
    image: str | None = None
    rows: list[list[str]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", [self._cells(r) for r in self.frame.to_dict("records")])

    def _cells(self, record: Mapping) -> list[str]:
        return [_cell(record.get(column.name), column.fmt) for column in self.columns]

    @property
    def count(self) -> int:
        return len(self.rows)


def _cell(value, fmt: Callable[[object], str]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return MISSING
    return fmt(value)


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["zip"] = zip
    return env


def render_html(context: Mapping, image_src: Mapping[str, str]) -> str:
    """The report page; `image_src` maps each plot to a file name (the page on disk) or a
    `cid:` reference (the email)."""
    template = environment().get_template("daily_report.html.j2")
    return template.render(**context, image_src=image_src)
