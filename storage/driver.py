"""The writes the pipeline makes for every article, handed to the database driver directly.

An article costs about 15 statements. Run through SQLAlchemy Core, each execution builds its
parameters in Python — a bind processor per value, insertmanyvalues batches, result
metadata — and bench/pipeline_stages.py measured that at more than SQLite's own work on the
same statements (py-spy, 2026-12-07: Connection.execute 31% of an article, the driver's
execute 13%). So the hot writes are prepared here once per dialect and handed to the driver
(`_run`: on SQLite the sqlite3 connection itself, on PostgreSQL `exec_driver_sql`).
SQLAlchemy still owns the transaction and its errors are raised; only the per-row parameter
work is done here, one processor per column that needs one (a datetime on SQLite, JSON), none
for the rest. Rows come back as the driver's tuples.

Three kinds of statement:
- `execute`/`executemany` take a Core statement (an INSERT of a table), compiled once per
  dialect for the columns the rows give. A column the rows leave out must have no Python-side
  default: SQLAlchemy would fill it in, the driver cannot, so compiling refuses.
- `values` runs a multi-row INSERT … RETURNING written in the SQL that SQLite (3.35+) and
  PostgreSQL both accept, with one `?` per parameter: an upsert of many rows that must say
  what it did, in one statement. (The driver's executemany returns no rows; SQLAlchemy's own
  batching of RETURNING costs what this module saves.)
- `query` runs a SELECT written the same way, where `[?]` takes a list: `IN [?]` becomes
  `IN (?, ?, …)`, one `?` per item.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Column, Connection, Insert, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

# Parameters in one statement: SQLite before 3.32 allowed at most 999.
MAX_PARAMETERS = 999

Processor = Callable[[Any], Any] | None


class Plan(NamedTuple):
    """A statement as the driver takes it, and how to turn a row into its parameters."""

    sql: str
    names: tuple[str, ...]  # the row's keys, in the order the driver takes them
    processors: tuple[Processor, ...]  # for each name, what SQLAlchemy would apply (or None)
    positional: bool  # a tuple per row (SQLite's qmark) or a dict (psycopg's pyformat)

    def parameters(self, row: Mapping[str, Any]) -> tuple | dict:
        values = [row[name] if process is None or row[name] is None else process(row[name])
                  for name, process in zip(self.names, self.processors, strict=True)]
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))


@lru_cache(maxsize=64)
def plan(statement: Executable, keys: tuple[str, ...], dialect: Dialect) -> Plan:
    """`statement` compiled for `dialect` with `keys` as its parameters: for an INSERT, the
    columns the rows give; otherwise the statement's own bound parameters."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if isinstance(statement, Insert) else None)
    if compiled.insert_prefetch or compiled.update_prefetch:
        missing = ", ".join(column.key for column in [*compiled.insert_prefetch, *compiled.update_prefetch])
        raise ValueError(f"rows for {statement} leave out {missing}, which have Python-side defaults; give them")
    positional = compiled.positiontup is not None
    names = tuple(compiled.positiontup) if positional else tuple(compiled.binds)
    if any(compiled.binds[name].expanding for name in names):
        raise ValueError(f"{statement} has an expanding IN list; run it through SQLAlchemy")
    processors = tuple(_processor(compiled.binds[name].type, dialect) for name in names)
    return Plan(compiled.string, names, processors, positional)


def execute(connection: Connection, statement: Executable, row: Mapping[str, Any]) -> list[tuple]:
    """One row through `statement`; its RETURNING rows, if any."""
    prepared = plan(statement, tuple(row), connection.dialect)
    return _run(connection, prepared.sql, prepared.parameters(row))


def executemany(connection: Connection, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows (all with the same keys) through `statement`, as the driver's executemany."""
    if rows:
        prepared = plan(statement, tuple(rows[0]), connection.dialect)
        _run(connection, prepared.sql, [prepared.parameters(row) for row in rows], many=True)


def _run(connection: Connection, sql: str, parameters: Any, many: bool = False) -> list[tuple]:
    """`sql` on the connection's driver; the rows it returns (none for `many`).

    On SQLite the statement goes to the sqlite3 connection itself. exec_driver_sql spent
    about 11 µs of Python around each statement (an execution context, a result object and
    its metadata, events nobody listens to) against SQLite's 2 µs for a one-row look-up, and an
    article makes about 15 of them (bench/statement_costs.py). What SQLAlchemy did that still
    matters is kept: the statement runs in the Connection's transaction (begun here if the
    Connection has not begun one, as its autobegin would), and a driver error comes out as
    SQLAlchemy's own exception class (IntegrityError, OperationalError, ...). PostgreSQL keeps
    exec_driver_sql: its statements there cost a network round trip, not Python."""
    if connection.dialect.name != "sqlite":
        if many:
            connection.exec_driver_sql(sql, parameters)
            return []
        return connection.exec_driver_sql(sql, parameters).all()
    if not connection.in_transaction():
        connection.begin()
    sqlite = connection.connection.driver_connection
    try:
        if many:
            sqlite.executemany(sql, parameters)
            return []
        return sqlite.execute(sql, parameters).fetchall()
    except sqlite3.Error as error:
        raise DBAPIError.instance(sql, parameters, error, sqlite3.Error) from error


@lru_cache(maxsize=64)
def _column_processor(column: Column, dialect: Dialect) -> Processor:
    """What SQLAlchemy applies to a value bound to `column` (None: the driver takes it as is)."""
    return _processor(column.type, dialect)


def bound(column: Column, dialect: Dialect, value: Any) -> Any:
    """`value` as SQLAlchemy would bind it to `column` (a datetime on SQLite is text)."""
    process = _column_processor(column, dialect)
    return value if process is None or value is None else process(value)


@lru_cache(maxsize=64)
def _row_processors(table: Table, columns: tuple[str, ...], dialect: Dialect) -> tuple[Processor, ...]:
    return tuple(_column_processor(table.c[name], dialect) for name in columns)


def processed(table: Table, columns: tuple[str, ...], dialect: Dialect, rows: Iterable[Sequence[Any]]) -> list[tuple]:
    """Rows of values for `columns` of `table`, each through what SQLAlchemy would apply to it."""
    processors = _row_processors(table, columns, dialect)
    return [tuple(value if process is None or value is None else process(value)
                  for value, process in zip(row, processors, strict=True)) for row in rows]


def _processor(type_, dialect: Dialect) -> Processor:
    return type_.dialect_impl(dialect).bind_processor(dialect)


def values(connection: Connection, head: str, row: str, tail: str, rows: Iterable[Sequence[Any]]) -> list[tuple]:
    """`head` + `row` once per row (its `?`s the row's values, already processed) + `tail`:
    a multi-row INSERT … RETURNING, in statements of at most MAX_PARAMETERS parameters.
    Returns the RETURNING rows (in no particular order)."""
    rows = list(rows)
    if not rows:
        return []
    width = row.count("?")
    per_statement = max(1, MAX_PARAMETERS // width)
    out: list[tuple] = []
    for first in range(0, len(rows), per_statement):
        chunk = rows[first:first + per_statement]
        sql = _values_sql(head, row, tail, len(chunk), connection.dialect.paramstyle)
        out += _run(connection, sql, tuple(value for values_ in chunk for value in values_))
    return out


def executemany_sql(connection: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Rows (values already processed) through `sql`, written with one `?` per parameter, as
    the driver's executemany."""
    if rows:
        _run(connection, _in_paramstyle(sql, connection.dialect.paramstyle), list(rows), many=True)


def query(connection: Connection, sql: str, parameters: Sequence[Any]) -> list[tuple]:
    """The rows of `sql`: each `?` takes one of `parameters` (already processed), each `[?]` a
    non-empty list of them."""
    lengths = tuple(len(p) if isinstance(p, list | tuple) else -1 for p in parameters)
    flat: list[Any] = []
    for parameter in parameters:
        if isinstance(parameter, list | tuple):
            flat += parameter
        else:
            flat.append(parameter)
    return _run(connection, _expanded(sql, lengths, connection.dialect.paramstyle), tuple(flat))


def query_each(connection: Connection, sql: str, items: Sequence[Any], per_statement: int = MAX_PARAMETERS) -> list[tuple]:
    """The rows of `sql`, whose one parameter is `[?]`, for every item of `items`: in
    statements of at most `per_statement` items each."""
    rows: list[tuple] = []
    for first in range(0, len(items), per_statement):
        rows += query(connection, sql, [items[first:first + per_statement]])
    return rows


_MARKS = re.compile(r"(\[\?\]|\?)")


@lru_cache(maxsize=1024)
def _expanded(sql: str, lengths: tuple[int, ...], paramstyle: str) -> str:
    pieces = _MARKS.split(sql)
    marks = pieces[1::2]
    if len(marks) != len(lengths):
        raise ValueError(f"{len(lengths)} parameters for {len(marks)} marks in {sql!r}")
    out = [pieces[0]]
    for mark, length, after in zip(marks, lengths, pieces[2::2], strict=True):
        if mark == "[?]":
            if length <= 0:
                raise ValueError(f"an empty or missing list for [?] in {sql!r}")
            out.append("(" + ", ".join(["?"] * length) + ")")
        else:
            if length >= 0:
                raise ValueError(f"a list for ? in {sql!r}")
            out.append("?")
        out.append(after)
    return _in_paramstyle("".join(out), paramstyle)


@lru_cache(maxsize=1024)
def _values_sql(head: str, row: str, tail: str, n: int, paramstyle: str) -> str:
    return _in_paramstyle(head + ", ".join([row] * n) + tail, paramstyle)


def _in_paramstyle(sql: str, paramstyle: str) -> str:
    """`sql` with `?` marks, in the driver's own style."""
    if paramstyle == "qmark":
        return sql
    if paramstyle in ("format", "pyformat"):  # psycopg: %s positional, literal % doubled
        return sql.replace("%", "%%").replace("?", "%s")
    raise NotImplementedError(f"newsmon stores to SQLite or PostgreSQL (paramstyle {paramstyle})")
