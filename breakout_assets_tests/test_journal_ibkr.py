"""The journal from IBKR: executions with commission reports through ib_async, and a Flex
statement from a file or the Flex Web Service, give the rows the simulated fills they describe
give (the same trades: the hand-built TEST long and its add-on of test_journal.py), plus what IB
charged.

No IB Gateway exists here: `FakeIB` (test_ibkr_broker.py) stands in for `ib_async.IB`, injected
through `IbkrBroker(ib_factory=...)`, and is the only mocked part; the fills it serves are real
ib_async `Fill`, `Execution`, `CommissionReport` and `Contract` objects, its completed orders real
`Trade`/`Order`s. The Flex Web Service is a local HTTP server on 127.0.0.1 speaking the service's
two steps (SendRequest, GetStatement), fed the sample statement under data/, which was written by
hand from IBKR's documented Flex format.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
from dagster import materialize
from ib_async import (
    Bag,
    CommissionReport,
    Execution,
    Fill,
    Option,
    Order,
    OrderStatus,
    Stock,
    Trade,
)
from sqlalchemy import create_engine, text

from breakout_assets.core.journal import TradeFill, build_journal
from breakout_assets.definitions import build_assets, build_resources
from breakout_assets.resources.broker.ibkr import IbkrBroker, journal_fills
from breakout_assets.resources.broker.resource import IbkrBrokerResource
from breakout_assets.resources.broker.simulated import _trade_fill
from breakout_assets.resources.flex import FlexStatement, FlexStatementError
from breakout_assets.resources.local_postgres import with_driver
from breakout_assets.settings import SettingsError, load_settings
from breakout_assets_tests import helpers
from breakout_assets_tests.conftest import new_database
from breakout_assets_tests.helpers import RANGE_END, RANGE_START, read_table, seed_hand_built
from breakout_assets_tests.test_ibkr_broker import ACCOUNT, FakeIB
from breakout_assets_tests.test_journal import (  # noqa: F401  (live: the fixture)
    BARS,
    DAYS,
    JOURNAL,
    PLAN,
    REF,
    live,
    managed_days,
)

STATEMENT = Path(__file__).parent / "data" / "flex_journal_statement.xml"
SPREAD = f"{REF}-SPRD"
TOKEN = "FLEXTOKEN-5up3r-s3cr3t-0042"
QUERY = "987654"
TEST = Stock("TEST", "SMART", "USD", conId=999001)
CALL_100 = Option("TEST", "20240216", 100.0, "C", "SMART", multiplier="100", conId=999101)
CALL_105 = Option("TEST", "20240216", 105.0, "C", "SMART", multiplier="100", conId=999105)
COMPARED = [  # what the simulated broker and IBKR both know; fees and times only IBKR says
    c
    for c in pd.Index(
        ["trade_id", "session", "book", "parent_ref", "signal_id", "ticker", "side", "quantity"]
        + ["entry_session", "entry_price", "exit_session", "exit_price", "initial_stop"]
        + ["initial_risk", "gross_pnl", "r_gross", "confidence", "tier", "exit_reason", "status"]
    )
]


def at(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    """January 2024, New York time (EST, UTC-5), as IB stamps executions: in UTC."""
    return datetime(2024, 1, day, hh + 5, mm, ss, tzinfo=UTC)


def execution(contract, ref, side, shares, price, when, perm, exec_id, commission) -> Fill:
    ex = Execution(
        execId=exec_id,
        time=when,
        acctNumber=ACCOUNT,
        exchange="SMART",
        side=side,
        shares=float(shares),
        price=price,
        permId=perm,
        clientId=17,
        orderId=perm % 100,
        cumQty=float(shares),
        avgPrice=price,
        orderRef=ref,
    )
    return Fill(contract, ex, CommissionReport(exec_id, commission, "USD"), when)


def ib_fills() -> list[Fill]:
    """The trades of the statement as IB's executions: the add-on's stop filled in two parts;
    the spread as its option legs (each with the combo's orderRef) plus the BAG's own execution,
    which repeats them."""
    bag = Bag(symbol="TEST", exchange="SMART", currency="USD")
    return [
        execution(
            TEST, REF, "BOT", 100, 100.0, at(3, 9, 41, 7), 1001, "0000e001.659a1b01.01.01", 1.0
        ),
        execution(
            CALL_100, SPREAD, "BOT", 2, 3.2, at(3, 10, 0), 3001, "0000e001.659a1b02.01.01", 1.3
        ),
        execution(
            CALL_105, SPREAD, "SLD", 2, 1.1, at(3, 10, 0), 3001, "0000e001.659a1b03.01.01", 1.3
        ),
        execution(bag, SPREAD, "BOT", 2, 2.1, at(3, 10, 0), 3001, "0000e001.659a1b04.01.01", 0.0),
        execution(
            TEST,
            f"{REF}-ADD",
            "BOT",
            200,
            103.0,
            at(8, 10, 2),
            2001,
            "0000e001.659f0c01.01.01",
            1.0,
        ),
        execution(
            TEST, REF, "SLD", 100, 101.9, at(9, 11, 15, 30), 1003, "0000e001.65a0a101.01.01", 1.0
        ),
        execution(
            TEST,
            f"{REF}-ADD",
            "SLD",
            150,
            101.9,
            at(9, 11, 15, 30),
            2003,
            "0000e001.65a0a102.01.01",
            0.75,
        ),
        execution(
            TEST,
            f"{REF}-ADD",
            "SLD",
            50,
            101.9,
            at(9, 11, 15, 31),
            2003,
            "0000e001.65a0a103.01.01",
            0.25,
        ),
        execution(
            CALL_100,
            f"{SPREAD}-close",
            "SLD",
            2,
            5.6,
            at(9, 10, 30),
            3002,
            "0000e001.65a0a201.01.01",
            1.3,
        ),
        execution(
            CALL_105,
            f"{SPREAD}-close",
            "BOT",
            2,
            2.4,
            at(9, 10, 30),
            3002,
            "0000e001.65a0a202.01.01",
            1.3,
        ),
    ]


def completed(perm: int, ref: str, order_type: str, parent: int) -> Trade:
    order = Order(
        orderId=perm % 100, permId=perm, orderType=order_type, parentId=parent, orderRef=ref
    )
    return Trade(TEST, order, OrderStatus(orderId=perm % 100, status="Filled"))


# What the fake IB serves: every execution of the statement, or (set by a test) one day's.
SERVED: dict[str, Callable[[], list[Fill]]] = {"fills": lambda: ib_fills()}


def fake_ib() -> FakeIB:
    """IB holding the executions; it still lists the primary's orders and the add-on's entry,
    not the add-on's stop (an order from an older session): its purpose is left to the price."""
    ib = FakeIB()
    ib.fills = SERVED["fills"]()
    ib.completed = [
        completed(1001, REF, "LMT", 0),
        completed(1003, REF, "STP", 1),
        completed(2001, f"{REF}-ADD", "LMT", 0),
    ]
    return ib


class FakeIbkrResource(IbkrBrokerResource):
    """The IBKR resource with `FakeIB` injected: the one seam a gateway-less test needs."""

    def build(self) -> IbkrBroker:
        return IbkrBroker(
            host=self.host,
            port=self.port,
            client_id=self.client_id,
            account=self.account,
            ib_factory=fake_ib,
        )


def journal_via_ibkr(settings, first=DAYS[0], last=DAYS[-1], fresh=True):
    """The journal of a range run against the fake IB (the journal table emptied first)."""
    [asset] = [a for a in build_assets(settings) if a.key.to_user_string() == "journal"]
    if fresh:
        with create_engine(with_driver(settings.database_url, "psycopg")).begin() as conn:
            conn.execute(text("DELETE FROM journal"))
    return materialize(
        [asset],
        resources={
            "postgres": build_resources(settings)["postgres"],
            "broker": FakeIbkrResource(account=ACCOUNT),
        },
        partition_key=first if first == last else None,
        tags=None if first == last else {RANGE_START: first, RANGE_END: last},
        instance=helpers.DEFAULT_INSTANCE,
    )


def add_spread_plan(url: str) -> None:
    with create_engine(with_driver(url, "psycopg")).begin() as conn:
        conn.execute(
            text("""INSERT INTO option_spreads (order_ref, signal_id, session, ticker, side,
                        option_right, expiry, long_strike, short_strike, net_debit, width,
                        contracts, max_loss, max_gain, ev, confidence, close_trigger, status,
                        reason, mode, sent_at)
                    VALUES (:ref, 'TEST:2024-01-02:long', '2024-01-02', 'TEST', 'long',
                        'C', '2024-02-16', 100, 105, 2.15, 5, 2, 430, 570, 0.3, 0.61, 104,
                        'sent', 'test', 'paper', now())"""),
            {"ref": SPREAD},
        )


class FlexService(BaseHTTPRequestHandler):
    """IB's Flex Web Service, two steps: SendRequest?t=&q=&v=3 answers a reference code and the
    GetStatement URL, GetStatement?q=&t=&v=3 the statement. A wrong token gets error 1020 with
    the token echoed back (as a careless server might): the reader must mask it."""

    def do_GET(self) -> None:
        url = urlparse(self.path)
        args = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.server.requests.append(url.path)
        if args.get("t") != TOKEN:
            body = (
                "<FlexStatementResponse><Status>Fail</Status><ErrorCode>1020</ErrorCode>"
                f"<ErrorMessage>Invalid token {args.get('t')}</ErrorMessage>"
                "</FlexStatementResponse>"
            ).encode()
        elif url.path.endswith("/SendRequest") and args.get("q") == QUERY:
            host, port = self.server.server_address
            body = (
                "<FlexStatementResponse><Status>Success</Status>"
                "<ReferenceCode>1234567890</ReferenceCode>"
                f"<Url>http://{host}:{port}/GetStatement</Url></FlexStatementResponse>"
            ).encode()
        elif url.path.endswith("/GetStatement") and args.get("q") == "1234567890":
            body = STATEMENT.read_bytes()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        """Quiet: a request line holds the token."""


@pytest.fixture
def flex_service():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlexService)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def flex_url(server) -> str:
    host, port = server.server_address
    return f"http://{host}:{port}/SendRequest?"


def test_ibkr_executions_and_a_flex_statement_give_the_simulated_journal(
    live, flex_service, monkeypatch, tmp_path, dagster_instance
):
    managed_days(live)  # the simulated broker trades it; management records the stop moves
    simulated = read_table(live.database_url, JOURNAL).set_index("trade_id")
    add_spread_plan(live.database_url)

    result = journal_via_ibkr(live)
    executions = read_table(live.database_url, JOURNAL).set_index("trade_id")
    assert set(executions["source"]) == {"ibkr_executions"} and set(executions["broker"]) == {
        "ibkr"
    }
    both = list(simulated.index)
    assert both == [REF, f"{REF}-ADD"]
    pd.testing.assert_frame_equal(
        simulated[COMPARED[1:]], executions.loc[both, COMPARED[1:]], check_exact=False, rtol=1e-12
    )
    # what IB charged: 1.00 per order (the add-on's stop in two executions, 0.75 + 0.25)
    assert list(executions.loc[both, "fees"]) == [2.0, 2.0]
    assert list(executions.loc[both, "net_pnl"]) == pytest.approx([188.0, -222.0])
    assert executions.loc[REF, "r_net"] == pytest.approx(188.0 / 400.0)
    assert executions.loc[REF, "entry_time"] == pd.Timestamp("2024-01-03 14:41:07", tz="UTC")
    assert executions.loc[f"{REF}-ADD", "exit_time"] == pd.Timestamp(
        "2024-01-09 16:15:31", tz="UTC"
    )
    # the spread: bought at 3.20 - 1.10, sold by its conditional close at 5.60 - 2.40
    spread = executions.loc[SPREAD]
    assert (spread.book, spread.parent_ref, spread.quantity, spread.exit_reason) == (
        "option_spread",
        REF,
        200,
        "target",
    )
    assert (spread.entry_price, spread.exit_price) == (pytest.approx(2.1), pytest.approx(3.2))
    assert spread.initial_risk == pytest.approx(420.0) and spread.gross_pnl == pytest.approx(220.0)
    assert spread.r_gross == pytest.approx(220.0 / 420.0) and spread.fees == pytest.approx(5.2)
    assert read_table(live.database_url, "SELECT * FROM journal_exceptions").empty
    assert helpers.run_totals(result, "journal")["fees"] == pytest.approx(9.2)

    from_file = load_settings(
        database_url=live.database_url,
        dry_run=False,
        kill_switch_path=tmp_path / "K",
        journal_source="ibkr_flex",
        ibkr_flex_file=STATEMENT,
    )
    journal_via_ibkr(from_file)
    statement = read_table(live.database_url, JOURNAL).set_index("trade_id")
    assert set(statement["source"]) == {"ibkr_flex"}
    pd.testing.assert_frame_equal(
        executions.drop(columns=["source", "recorded_at"]),
        statement.drop(columns=["source", "recorded_at"]),
    )

    monkeypatch.setenv("BREAKOUT_IBKR_FLEX_TOKEN", TOKEN)
    from_service = load_settings(
        database_url=live.database_url,
        dry_run=False,
        kill_switch_path=tmp_path / "K",
        journal_source="ibkr_flex",
        ibkr_flex_query_id=QUERY,
        ibkr_flex_url=flex_url(flex_service),
    )
    result = journal_via_ibkr(from_service)
    assert flex_service.requests == ["/SendRequest", "/GetStatement"]
    pd.testing.assert_frame_equal(
        statement,
        read_table(live.database_url, JOURNAL)
        .set_index("trade_id")
        .assign(recorded_at=statement["recorded_at"]),
    )
    # the token is used, never shown: not in the run's events and logs, nor in any table
    logs = dagster_instance.all_logs(result.run_id)
    assert TOKEN not in " ".join(repr(e) for e in [*result.all_events, *logs])
    for name in ("journal", "journal_exceptions"):
        assert TOKEN not in read_table(live.database_url, f"SELECT * FROM {name}").to_csv()
    assert TOKEN not in repr(from_service) and TOKEN not in repr(FlexStatement(query_id=QUERY))


def test_executions_and_statement_fills_are_what_the_simulated_broker_reports():
    """Fill by fill: IB's executions (one BAG execution repeating its legs, skipped) and the
    statement's rows (one ORDER-level summary, skipped) name the same fills."""
    from_ib = journal_fills(ib_fills(), {t.order.permId: t.order for t in fake_ib().completed})
    from_flex = FlexStatement(path=STATEMENT).fills()
    key = lambda f: (f.session, f.time, f.order_ref, f.quantity)  # noqa: E731
    from_ib, from_flex = sorted(from_ib, key=key), sorted(from_flex, key=key)
    # the statement names the add-on stop's order type; IB no longer lists that order
    unknown = [i for i, f in enumerate(from_ib) if f.purpose is None]
    assert [from_flex[i].purpose for i in unknown] == ["stop", "stop"]
    assert [replace(f, purpose=None) if i in unknown else f for i, f in enumerate(from_flex)] == (
        from_ib
    )
    simulated = [  # sim_fills / sim_spread_fills rows as the simulated broker reads them
        _trade_fill(
            dict(
                order_ref=ref,
                ticker="TEST",
                side=side,
                leg=leg,
                session=day,
                price=price,
                quantity=quantity,
                combo=side is None,
            )
        )
        for ref, side, leg, day, price, quantity in [
            (REF, "long", "entry", date(2024, 1, 3), 100.0, 100),
            (SPREAD, None, "entry", date(2024, 1, 3), 2.1, 200),
            (f"{REF}-ADD", "long", "entry", date(2024, 1, 8), 103.0, 200),
            (REF, "long", "stop", date(2024, 1, 9), 101.9, 100),
            (SPREAD, None, "condition", date(2024, 1, 9), 3.2, 200),
        ]
    ]
    bare = lambda f: (f.order_ref, f.action, f.session, f.purpose, round(f.price, 6))  # noqa: E731
    add_on_exits = [f for f in from_ib if f.order_ref == f"{REF}-ADD" and f.action == "SELL"]
    assert [(f.quantity, f.purpose) for f in add_on_exits] == [(150, None), (50, None)]
    assert {bare(f) for f in simulated} == {bare(f) for f in from_ib if f not in add_on_exits}
    assert sum(f.commission for f in from_ib) == pytest.approx(9.2)  # the BAG charges nothing


def test_a_wrong_token_or_an_unreachable_service_never_shows_the_token(flex_service):
    wrong = "WRONG-" + TOKEN
    reader = FlexStatement(
        query_id=QUERY, url=flex_url(flex_service), environ={"BREAKOUT_IBKR_FLEX_TOKEN": wrong}
    )
    with pytest.raises(FlexStatementError) as refused:
        reader.fills()
    assert "1020" in str(refused.value) and "***" in str(refused.value)
    assert wrong not in str(refused.value) and refused.value.__cause__ is None
    host, port = flex_service.server_address
    flex_service.shutdown()
    flex_service.server_close()
    down = FlexStatement(
        query_id=QUERY,
        url=f"http://{host}:{port}/SendRequest?",
        environ={"BREAKOUT_IBKR_FLEX_TOKEN": TOKEN},
    )
    with pytest.raises(FlexStatementError) as unreachable:
        down.fills()
    assert TOKEN not in str(unreachable.value) and "URLError" in str(unreachable.value)
    with pytest.raises(FlexStatementError, match="set BREAKOUT_IBKR_FLEX_TOKEN"):
        FlexStatement(query_id=QUERY, environ={}).fills()


def test_the_journal_reconciles_ib_executions_without_a_plan():
    """An execution IB reports with no plan behind it (a trade made by hand in TWS, no
    orderRef) is reported on its session, never dropped."""
    manual = execution(TEST, "", "BOT", 10, 99.5, at(4, 13, 0), 4001, "m1", 1.0)
    fills = journal_fills([manual], {})
    journal = build_journal(fills, [])
    [found] = journal.exceptions
    assert (found.session, found.kind) == (date(2024, 1, 4), "fill_without_plan")
    assert "BUY 10 TEST @ 99.5000 on 2024-01-04" in found.detail
    assert fills == [
        TradeFill("", "TEST", "BUY", 10, 99.5, date(2024, 1, 4), None, at(4, 13, 0), 1.0, "m1")
    ]


def test_flex_settings_name_what_is_missing_and_never_show_the_token(monkeypatch):
    with pytest.raises(SettingsError) as missing:
        load_settings(journal_source="ibkr_flex")
    assert "BREAKOUT_IBKR_FLEX_FILE" in str(missing.value)
    assert "BREAKOUT_IBKR_FLEX_TOKEN" in str(missing.value)
    monkeypatch.setenv("BREAKOUT_IBKR_FLEX_TOKEN", TOKEN)
    settings = load_settings(journal_source="ibkr_flex", ibkr_flex_query_id=QUERY)
    assert settings.ibkr_flex_token.get_secret_value() == TOKEN and TOKEN not in repr(settings)
    monkeypatch.setenv("BREAKOUT_IBKR_FLEX_URL", f"ftp://flex/{TOKEN}")
    with pytest.raises(SettingsError) as bad:
        load_settings(journal_source="ibkr_flex", ibkr_flex_query_id=QUERY)
    assert "BREAKOUT_IBKR_FLEX_URL" in str(bad.value)
    monkeypatch.delenv("BREAKOUT_IBKR_FLEX_URL")
    monkeypatch.setenv("BREAKOUT_IBKR_FLEX_TOKEN", " ")  # blank is unset
    with pytest.raises(SettingsError, match="BREAKOUT_IBKR_FLEX_TOKEN"):
        load_settings(journal_source="ibkr_flex", ibkr_flex_query_id=QUERY)


def test_executions_of_each_day_build_trades_that_span_days(pg_server, monkeypatch, tmp_path):
    """IB serves the day's executions only: the entry seen on the 3rd is recorded, so the exit
    served on the 9th closes the trade (no exit without an entry); a re-run changes nothing."""
    url = new_database(pg_server)
    seed_hand_built(url, BARS, [PLAN])
    settings = load_settings(database_url=url, kill_switch_path=tmp_path / "K")
    day = {f.execution.execId: f for f in ib_fills()}
    monkeypatch.setitem(SERVED, "fills", lambda: [day["0000e001.659a1b01.01.01"]])
    journal_via_ibkr(settings, "2024-01-03", "2024-01-03", fresh=False)
    [row] = read_table(url, JOURNAL).itertuples()
    assert (row.status, str(row.session), row.fees) == ("open", "2024-01-03", 1.0)
    monkeypatch.setitem(SERVED, "fills", lambda: [day["0000e001.65a0a101.01.01"]])
    journal_via_ibkr(settings, "2024-01-09", "2024-01-09", fresh=False)
    [row] = read_table(url, JOURNAL).itertuples()
    assert (row.status, str(row.session), row.exit_reason, row.fees) == (
        "closed",
        "2024-01-09",
        "stop",  # no management here: the stop in force is the initial one
        2.0,
    )
    assert row.r_gross == pytest.approx((101.9 - 100.0) / 4.0)
    assert row.entry_time == pd.Timestamp("2024-01-03 14:41:07", tz="UTC")
    assert read_table(url, "SELECT * FROM journal_exceptions").empty
    before = read_table(url, JOURNAL)
    journal_via_ibkr(settings, "2024-01-03", "2024-01-09", fresh=False)  # the same, again
    pd.testing.assert_frame_equal(before, read_table(url, JOURNAL))
    fills = read_table(url, "SELECT fill_id, source FROM journal_fills ORDER BY fill_id")
    assert fills.values.tolist() == [
        ["0000e001.659a1b01.01.01", "ibkr_executions"],
        ["0000e001.65a0a101.01.01", "ibkr_executions"],
    ]
