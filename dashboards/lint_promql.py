"""PromQL text and AST helpers for the dashboard linter (`vigil.dashboards.lint`).

Grafana rewrites a query before Prometheus sees it (`$__rate_interval` becomes a duration, `$route` a value
or a regex alternation), so the raw expr is not PromQL. `substitute_variables` does the same rewriting with
plausible values so that the real parser (`promql_parser`, a port of Prometheus' own) can judge the query.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import promql_parser

# Grafana's own variable syntax: $var, [[var]] / [[var:format]], ${var} / ${var.field} / ${var:format}.
VARIABLE_REFERENCE = re.compile(
    r"\$(?P<plain>\w+)|\[\[(?P<bracketed>\w+?)(?::\w+)?\]\]|\$\{(?P<braced>\w+)(?:\.[^:^}]+)?(?::[^}]+)?\}"
)
_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHER_OPERATOR = re.compile(r"(=~|!~|!=|=)\s*$")
_RATE_CALL = re.compile(r"\b(rate|irate|increase)\s*\(")
_RANGE = re.compile(r"\[([^\]]*)\]")
_LABEL_VALUES = re.compile(
    r"\s*label_values\s*\(\s*(?:(?P<selector>.+?)\s*,\s*)?(?P<label>[^,()]*?)\s*\)\s*", re.S
)

# $__range is fine too: `increase(x_total[$__range])` is the total over the picked time range (stats).
RATE_INTERVAL_FORMS = frozenset({"$__rate_interval", "${__rate_interval}", "$__range", "${__range}"})
# A counter only means something as a rate of change; these functions turn it into one.
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
# Checking that a counter exists at all does not read its value either.
COUNTER_EXISTENCE_FUNCTIONS = frozenset({"absent", "absent_over_time"})
COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
# Gauges whose names end like counters: postgres_exporter's sessions and locks by state and mode, and
# OpenTelemetry's connection pool size (an UpDownCounter, db.client.connection.count).
GAUGES_NAMED_LIKE_COUNTERS = frozenset(
    {"pg_stat_activity_count", "pg_locks_count", "db_client_connection_count"}
)


def variable_name(match: re.Match[str]) -> str:
    return match.group("plain") or match.group("bracketed") or match.group("braced")


def is_builtin_variable(name: str) -> bool:
    """Grafana's global variables ($__interval, $__range, ...); numeric names are regex groups like "$1"."""
    return name.startswith("__") or name.isdigit()


def _builtin_value(name: str) -> str:
    if name.endswith("_ms"):
        return "60000"
    if name.endswith("_s"):
        return "60"
    if name in {"__interval", "__rate_interval", "__range", "__auto"}:
        return "1m"
    if name in {"__from", "__to"}:
        return "1700000000000"
    return "value"


def _plain_value(variable: Mapping[str, Any]) -> str:
    """What a variable outside any string most plausibly becomes: an interval, a number or a label name."""
    if variable.get("type") == "interval":
        return "1m"
    current = variable.get("current")
    value = current.get("value") if isinstance(current, Mapping) else None
    plain = isinstance(value, str) and re.fullmatch(r"[\w.:]+", value)
    if variable.get("type") in {"constant", "custom", "textbox"} and plain:
        return str(value)
    return "value"


def _string_spans(expr: str) -> list[tuple[int, int, str]]:
    """(start, end, matcher operator before it or '') for every string literal in expr."""
    spans = []
    for literal in _STRING_LITERAL.finditer(expr):
        operator = _MATCHER_OPERATOR.search(expr[: literal.start()])
        spans.append((literal.start(), literal.end(), operator.group(1) if operator else ""))
    return spans


def _operator_at(spans: list[tuple[int, int, str]], position: int) -> str | None:
    """The matcher operator of the string around position: '' for other strings, None outside strings."""
    for start, end, operator in spans:
        if start < position < end:
            return operator
    return None


def substitute_variables(expr: str, *, variables: Mapping[str, Mapping[str, Any]]) -> str:
    """Replace Grafana variables like Grafana would, with values that keep the PromQL structure intact."""
    spans = _string_spans(expr)

    def replacement(match: re.Match[str]) -> str:
        name = variable_name(match)
        if name.isdigit() or (name not in variables and not name.startswith("__")):
            return match.group(0)  # Grafana leaves unknown names alone
        if name.startswith("__"):
            return _builtin_value(name)
        operator = _operator_at(spans, match.start())
        if operator in {"=~", "!~"}:
            return ".+"  # a multi-value or All selection becomes a regex
        if operator is not None:
            return "value"
        return _plain_value(variables[name])

    return VARIABLE_REFERENCE.sub(replacement, expr)


def unknown_variables(expr: str, *, variables: Mapping[str, Any]) -> list[str]:
    names = (variable_name(match) for match in VARIABLE_REFERENCE.finditer(expr))
    return sorted({name for name in names if not is_builtin_variable(name) and name not in variables})


def variables_in_equality_matchers(expr: str) -> list[tuple[str, str]]:
    """(variable, string literal) for variables in `=` / `!=` matchers, where a regex alternation breaks."""
    found = []
    for start, end, operator in _string_spans(expr):
        if operator in {"=", "!="}:
            literal = expr[start:end]
            found += [(variable_name(match), literal) for match in VARIABLE_REFERENCE.finditer(literal)]
    return found


@functools.cache
def parse(expr: str) -> promql_parser.Expr | str:
    """The AST, or the parser's error message."""
    try:
        return promql_parser.parse(expr)
    except ValueError as error:
        return str(error)


def _call_argument(expr: str, open_paren: int) -> str:
    depth = 0
    for position in range(open_paren, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[position], 0)
        if depth == 0:
            return expr[open_paren + 1 : position]
    return expr[open_paren + 1 :]


def fixed_rate_ranges(expr: str) -> list[str]:
    """`rate(...[5m])`-like calls whose range is not `$__rate_interval`, which follows the scrape interval."""
    found = []
    for call in _RATE_CALL.finditer(expr):
        ranges = _RANGE.findall(_call_argument(expr, call.end() - 1))
        if ranges and ranges[-1].strip() not in RATE_INTERVAL_FORMS:
            found.append(f"{call.group(1)}(...[{ranges[-1]}])")
    return found


def _selector_name(selector: promql_parser.VectorSelector) -> str:
    if selector.name:
        return selector.name
    for matcher in selector.matchers.matchers:
        if matcher.name == "__name__" and matcher.op == promql_parser.MatchOp.Equal:
            return matcher.value
    return ""


def counters_outside_rate(ast: promql_parser.Expr) -> list[str]:
    """Counter selectors read as raw values (e.g. `sum(x_total)`), which only ever grow and reset."""
    found: list[str] = []
    depth = 0  # how many rate-like calls enclose the node being visited

    def is_rate_like(node: promql_parser.Expr) -> bool:
        allowed = COUNTER_FUNCTIONS | COUNTER_EXISTENCE_FUNCTIONS
        return isinstance(node, promql_parser.Call) and node.func.name in allowed

    def enter(node: promql_parser.Expr) -> None:
        nonlocal depth
        if is_rate_like(node):
            depth += 1
        elif isinstance(node, promql_parser.VectorSelector) and depth == 0:
            name = _selector_name(node)
            if name.endswith(COUNTER_SUFFIXES) and name not in GAUGES_NAMED_LIKE_COUNTERS:
                found.append(name)

    def leave(node: promql_parser.Expr) -> None:
        nonlocal depth
        if is_rate_like(node):
            depth -= 1

    promql_parser.walk(ast, enter, leave)
    return found


_LABEL_KEEPING_AGGREGATIONS = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})


def grouping_labels(ast: Any) -> tuple[set[str], bool]:
    """Labels the result is grouped by through `by (...)`, and whether a `without` leaves several series.

    Follows the result, not every clause: `count(count by (incident) (x))` is one series, and
    `histogram_quantile` folds `le` away. Plain selectors count as ungrouped; only aggregations are judged.
    """
    if isinstance(ast, promql_parser.AggregateExpr):
        if str(ast.op) in _LABEL_KEEPING_AGGREGATIONS:
            return grouping_labels(ast.expr)
        if ast.modifier is None:
            return set(), False
        if ast.modifier.type == promql_parser.AggModifierType.Without:
            return set(), True
        return set(ast.modifier.labels), False
    if isinstance(ast, promql_parser.BinaryExpr):
        left, right = grouping_labels(ast.lhs), grouping_labels(ast.rhs)
        return left[0] | right[0], left[1] or right[1]
    if isinstance(ast, promql_parser.Call):
        arguments = [argument for argument in ast.args if isinstance(argument, promql_parser.Expr)]
        if ast.func.name == "histogram_quantile" and len(arguments) == 2:
            labels, uses_without = grouping_labels(arguments[1])
            return labels - {"le"}, uses_without
        return grouping_labels(arguments[0]) if arguments else (set(), False)
    if isinstance(ast, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
        return grouping_labels(ast.expr)
    return set(), False


def parse_label_values(query: str) -> tuple[str, str] | None:
    """(selector or '', label) of `label_values(selector, label)` / `label_values(label)`, else None."""
    match = _LABEL_VALUES.fullmatch(query)
    if match is None:
        return None
    return match.group("selector") or "", match.group("label")
