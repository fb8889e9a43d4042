"""ErrorInfo reasons are declared once (domain/reasons.py) and documented (docs/errors.md).

The source is scanned, not imported piecemeal: a contributor who writes a new
reason as a string literal anywhere in src/ fails here, as does a reason that
docs/errors.md forgets or a documented status that the raise sites contradict.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest

from post_management.domain import errors
from post_management.domain.reasons import Reason
from post_management.entrypoints.grpc.errors import status_code_for

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"  # the service and the X emulator beside it
DECLARED = SRC / "post_management" / "domain" / "reasons.py"
DOC = ROOT / "docs" / "errors.md"
# What Envoy's gRPC-JSON transcoder answers for each status (docs/rest.md).
HTTP = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "INTERNAL": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
}
LITERAL = re.compile(r"[A-Z][A-Z0-9_]+")
ROW = re.compile(r"^\|\s*`([A-Z0-9_]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$")


@cache
def _modules() -> tuple[tuple[Path, tuple[ast.AST, ...]], ...]:
    """Every module of src/ but the declarations, as the nodes of its tree (ast.walk's
    order), parsed and walked once for all the tests here."""
    return tuple(
        (path, _nodes(ast.parse(path.read_text(), filename=str(path))))
        for path in sorted(SRC.rglob("*.py"))
        if path != DECLARED
    )


def _nodes(tree: ast.AST) -> tuple[ast.AST, ...]:
    return tuple(ast.walk(tree))


def _dotted(node: ast.expr) -> str:
    """ast.unparse(node), written out directly for a name or an attribute chain on one
    (the callee of nearly every call); anything else is unparsed."""
    parts: list[str] = []
    base = node
    while isinstance(base, ast.Attribute):
        parts.append(base.attr)
        base = base.value
    if not isinstance(base, ast.Name):
        return ast.unparse(node)
    return ".".join([base.id, *reversed(parts)])


def _is_code(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and LITERAL.fullmatch(node.value) is not None
    )


def _literal_reasons(nodes: Sequence[ast.AST]) -> list[tuple[int, str]]:
    """Reason codes written as string literals where a Reason member belongs."""
    found: list[tuple[int, str]] = []
    for node in nodes:
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "reason" and _is_code(keyword.value):
                    found.append((node.lineno, ast.unparse(keyword.value)))
            # Positional places of a reason: ensure_at_most's fifth, for_field's third,
            # an error constructor's second (message, reason, ...).
            name = _dotted(node.func).rsplit(".", 1)[-1]
            place = {"ensure_at_most": 4, "for_field": 2}.get(name)
            kind = getattr(errors, name, None)
            if place is None and isinstance(kind, type) and issubclass(kind, errors.DomainError):
                place = 1
            if place is not None and len(node.args) > place and _is_code(node.args[place]):
                found.append((node.lineno, ast.unparse(node.args[place])))
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            params = node.args.args + node.args.kwonlyargs
            defaults = [None] * (len(node.args.args) - len(node.args.defaults))
            for param, default in zip(
                params, [*defaults, *node.args.defaults, *node.args.kw_defaults], strict=True
            ):
                if "reason" in param.arg.lower() and _is_code(default):
                    found.append((node.lineno, f"{param.arg}={ast.unparse(default)}"))
        if isinstance(node, ast.AnnAssign | ast.Assign):
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            names = [ast.unparse(target) for target in targets]
            values = [node.value]
            if isinstance(node.value, ast.IfExp):
                values = [node.value.body, node.value.orelse]
            if any("reason" in name.lower() for name in names) and any(map(_is_code, values)):
                found.append((node.lineno, ast.unparse(node)))
    return found


def _raised_with() -> dict[str, set[str]]:
    """Reason -> the gRPC statuses of the error classes raised with it."""
    statuses: dict[str, set[str]] = defaultdict(set)
    for _, nodes in _modules():
        for node in nodes:
            if not isinstance(node, ast.Call):
                continue
            cls = getattr(errors, _dotted(node.func).split(".")[0], None)
            if not (isinstance(cls, type) and issubclass(cls, errors.DomainError)):
                continue
            for keyword in node.keywords:
                value = keyword.value
                if keyword.arg == "reason" and ast.unparse(value).startswith("Reason."):
                    member = ast.unparse(value).removeprefix("Reason.")
                    statuses[member].add(status_code_for(cls("probe")).name)
    return statuses


def _documented() -> dict[str, tuple[str, str, str]]:
    rows: dict[str, tuple[str, str, str]] = {}
    for line in DOC.read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, status, http, when = (part.strip() for part in match.groups())
            assert name not in rows, f"docs/errors.md lists {name} twice"
            rows[name] = (status, http, when)
    return rows


def test_no_reason_is_a_string_literal_in_src() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text}"
        for path, nodes in _modules()
        for line, text in _literal_reasons(nodes)
    ]
    assert found == [], "use a Reason member (domain/reasons.py) instead:\n" + "\n".join(found)


def test_the_scan_finds_a_literal_reason() -> None:
    """The scan itself sees each form a literal reason takes in this code base."""
    tree = ast.parse(
        "raise NotFound('x', reason='POST_NOT_FOUND')\n"
        "ensure_at_most(items, 3, 'f', 'things', 'TOO_MANY')\n"
        "def check(reason: str = 'INVALID_FIELD') -> None: ...\n"
        "_REASON = 'INVALID_POSTING_RULES'\n"
        "reason_code = 'A_B' if flag else 'C_D'\n"
        "look_again(claim, reason='looking again: timeout')\n"
        "raise Aborted('lost', 'ETAG_MISMATCH')\n"
        "InvalidArgument.for_field('f', 'is bad', 'INVALID_FIELD')\n"
        "raise NotFound('x', Reason.POST_NOT_FOUND)\n"
    )
    assert len(_literal_reasons(_nodes(tree))) == 7


def test_reason_values_are_their_names() -> None:
    for member in Reason:
        assert member.value == member.name
        assert str(member) == member.name  # what ErrorInfo, logs and JSON carry


@pytest.mark.parametrize(
    "kind",
    [
        kind
        for kind in vars(errors).values()
        if isinstance(kind, type) and issubclass(kind, errors.DomainError)
    ],
)
def test_every_error_class_defaults_to_a_declared_reason(kind: type[errors.DomainError]) -> None:
    assert Reason(kind("probe").reason)
    assert Reason(errors.InvalidArgument.for_field("f", "d").reason)


def test_docs_list_exactly_the_declared_reasons() -> None:
    documented = _documented()
    assert sorted(documented) == sorted(Reason.__members__)


def test_docs_give_each_reason_its_status_and_http_code() -> None:
    raised = _raised_with()
    for name, (status, http, when) in _documented().items():
        codes = [code.strip() for code in status.split(",")]
        assert codes and all(code in HTTP for code in codes), (name, status)
        assert http == ", ".join(str(HTTP[code]) for code in codes), (name, http)
        assert when, f"docs/errors.md: say when {name} is returned"
        assert raised.get(name, set()) <= set(codes), (name, raised[name], codes)
