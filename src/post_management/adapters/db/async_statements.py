"""The synchronous adapters' SQLAlchemy statements, compiled once into psycopg's SQL
text, so the asynchronous unit of work runs the same statements without SQLAlchemy's
per-call work (about half of a SchedulePost's CPU when it ran through SQLAlchemy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from psycopg.types.json import Jsonb
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_DIALECT = psycopg_dialect.dialect()  # type: ignore[no-untyped-call]


class Compiled:
    """One statement as psycopg text with named parameters (%(name)s) and the values
    the statement carries itself (the IN list of a constant tuple, say)."""

    def __init__(
        self,
        statement: ClauseElement,
        columns: Sequence[str] | None = None,
        json: Sequence[str] = (),
        null_json: Sequence[str] = (),
    ) -> None:
        keys = list(columns) if columns is not None else None
        compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT, column_keys=keys))
        required = {name: None for name, bind in compiled.binds.items() if bind.required}
        # A list the caller gives would be rendered from its placeholder: none may be.
        assert not any(compiled.binds[name].expanding for name in required)
        if any(bind.expanding for bind in compiled.binds.values()):
            # A list (IN) is rendered into the text, which needs a value for every
            # parameter: the caller's get a placeholder, replaced when called.
            compiled = cast(
                SQLCompiler,
                statement.params(required).compile(
                    dialect=_DIALECT, column_keys=keys, compile_kwargs={"render_postcompile": True}
                ),
            )
            values = compiled.construct_expanded_state().parameters
        else:
            values = compiled.params
        # The values the statement carries itself (a constant, a filter's value).
        self._constants: dict[str, Any] = {k: v for k, v in values.items() if k not in required}
        self.sql = str(compiled)
        # Parameters holding JSON documents: psycopg sends a dict only when it is told,
        # and None as JSON null unless the column keeps None as SQL NULL (as SQLAlchemy's
        # JSONB and JSONB(none_as_null=True) store them).
        self._json = tuple(json)
        self._null_json = tuple(null_json)

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        params = {**self._constants, **values}
        for name in self._json:
            if name in params and (params[name] is not None or name not in self._null_json):
                params[name] = Jsonb(params[name])
        return params


class CompiledWrite:
    """An INSERT or UPDATE whose columns are the parameters' names: compiled once
    for each set of names it is called with."""

    def __init__(
        self, statement: ClauseElement, json: Sequence[str] = (), null_json: Sequence[str] = ()
    ) -> None:
        self._statement = statement
        self._json = tuple(json)
        self._null_json = tuple(null_json)
        self._by_columns: dict[tuple[str, ...], Compiled] = {}

    def for_values(self, values: Mapping[str, Any]) -> Compiled:
        columns = tuple(values)
        compiled = self._by_columns.get(columns)
        if compiled is None:
            compiled = Compiled(self._statement, columns, self._json, self._null_json)
            self._by_columns[columns] = compiled
        return compiled


def one_row(update: str) -> str:
    """`update` (an UPDATE's text) as a statement that fails when it changes no row:
    a division by zero, PostgreSQL's one way to raise from plain SQL. Sent in a
    pipeline before the COMMIT, its failure fails the transaction."""
    # `update` is compiled statement text, never a value.
    return f"WITH changed AS ({update} RETURNING 1) SELECT 1 / count(*) FROM changed"  # noqa: S608
