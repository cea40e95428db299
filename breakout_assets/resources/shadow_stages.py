"""One statement's work spread over several connections, each writing into a stage of its own.

Why: Postgres runs a set-based INSERT ... SELECT with window functions on one backend, so the
first backfill of a decade of `daily_features` is bound by one core however many it has. Here
each connection puts a schema of its own at the head of its search_path, where an UNLOGGED table
shaped like the target goes by the target's name: the unchanged statement writes that stage.
The stages are committed by their connections before the writing transaction touches the
target; it then moves their rows in (`move_in`, which also drops them), so its commit makes all
of it stored at once, and a rollback leaves the target as it was (`drop` removes the stages).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from breakout_assets.resources.sql import query, raw_query

Job = Callable[[Connection], object]


@dataclass(frozen=True)
class ShadowStage:
    table: str
    index: int

    @property
    def schema(self) -> str:
        return f"{self.table}_stage_{self.index}"

    def sql(self, statement: str) -> str:
        return raw_query(f"stages.{statement}").format(schema=self.schema, table=self.table)


class ShadowStages:
    """`connections` stages of `table`; `run` the jobs on them, then `move_in` in the writer."""

    def __init__(self, engine: Engine, table: str, connections: int):
        self.engine = engine
        self.stages = [ShadowStage(table, index) for index in range(connections)]

    def run(self, writer: Connection, jobs: Sequence[Job]) -> None:
        """Each job on the next free connection, inside that connection's stage; every stage
        committed, or the first error raised (the others stop before their next job). The
        writer's transaction holds the table's stage lock from here to its end, so two writers
        never share the stages."""
        writer.execute(query("stages.lock"), {"table": self.stages[0].table})
        waiting: queue.SimpleQueue[Job] = queue.SimpleQueue()
        for job in jobs:
            waiting.put(job)
        errors: list[BaseException] = []

        def work(stage: ShadowStage) -> None:
            try:
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(stage.sql("create_stage"))
                    conn.execute(query("stages.lead_search_path"), {"schema": stage.schema})
                    while not errors:
                        try:
                            job = waiting.get_nowait()
                        except queue.Empty:
                            return
                        job(conn)
            except BaseException as error:  # re-raised by the caller's thread
                errors.append(error)

        threads = [threading.Thread(target=work, args=(stage,)) for stage in self.stages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise RuntimeError(f"a staging connection failed: {errors[0]}") from errors[0]

    def move_in(self, conn: Connection) -> None:
        """In the writing transaction: every stage's rows into the table; the stages dropped
        (with its commit)."""
        for stage in self.stages:
            conn.exec_driver_sql(stage.sql("move_in"))
            conn.exec_driver_sql(stage.sql("drop_stage"))

    def drop(self) -> None:
        """Stages a rolled-back writer (or a crash) left committed; none after a commit."""
        with self.engine.begin() as conn:
            for stage in self.stages:
                conn.exec_driver_sql(stage.sql("drop_stage"))
