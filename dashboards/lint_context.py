"""What the dashboard lint rules share: the Finding type and a parsed view of the dashboard dict."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# The datasource variable each datasource type is selected through, as the generator emits them.
DATASOURCE_VARIABLES = {"prometheus": "datasource", "elasticsearch": "logs"}


@dataclass(frozen=True)
class Finding:
    dashboard: str  # uid
    panel: str  # panel title ('' for dashboard-level)
    rule: str  # rule id, e.g. "panel-units"
    message: str  # what is wrong and how to fix it, naming the offending query/value


def mapping(value: Any) -> Mapping[str, Any]:
    """value if it is a dict, else {}: the linter reports malformed input instead of crashing on it."""
    return value if isinstance(value, Mapping) else {}


def mappings(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


@dataclass(frozen=True)
class Panel:
    spec: Mapping[str, Any]
    layout_group: int  # 0: the dashboard's grid; n: the grid inside the collapsed row at index n-1
    single_valued: frozenset[str]  # repeat variables: in each repeated copy `$var` is one value

    @property
    def title(self) -> str:
        return str(self.spec.get("title") or "")

    @property
    def type(self) -> str:
        return str(self.spec.get("type") or "")

    @property
    def targets(self) -> list[Mapping[str, Any]]:
        return mappings(self.spec.get("targets"))

    def kind(self, target: Mapping[str, Any]) -> str:
        """The datasource type a target queries: its own reference, the panel's, or what its fields imply."""
        for reference in (target.get("datasource"), self.spec.get("datasource")):
            if isinstance(reference, Mapping) and reference.get("type"):
                return str(reference["type"])
        if "expr" in target:
            return "prometheus"
        return "elasticsearch" if "bucketAggs" in target or "metrics" in target else ""


def _with_repeat(spec: Mapping[str, Any], inherited: frozenset[str]) -> frozenset[str]:
    return inherited | {str(spec["repeat"])} if spec.get("repeat") else inherited


def layout_items(dashboard: Mapping[str, Any]) -> list[Panel]:
    """Rows and panels. A collapsed row holds its panels itself; an expanded row is followed by them."""
    items: list[Panel] = []
    row_repeat: frozenset[str] = frozenset()
    for index, spec in enumerate(mappings(dashboard.get("panels"))):
        if spec.get("type") != "row":
            items.append(Panel(spec, 0, _with_repeat(spec, row_repeat)))
            continue
        row_repeat = _with_repeat(spec, frozenset())
        items.append(Panel(spec, 0, frozenset()))
        items += [
            Panel(nested, index + 1, _with_repeat(nested, row_repeat))
            for nested in mappings(spec.get("panels"))
        ]
    return items


@dataclass(frozen=True)
class LintContext:
    dashboard: Mapping[str, Any]
    uid: str
    items: list[Panel]  # rows and panels
    variables: dict[str, Mapping[str, Any]]

    @classmethod
    def of(cls, dashboard: Mapping[str, Any]) -> LintContext:
        variables = mappings(mapping(dashboard.get("templating")).get("list"))
        return cls(
            dashboard=dashboard,
            uid=str(dashboard.get("uid") or ""),
            items=layout_items(dashboard),
            variables={str(variable.get("name")): variable for variable in variables},
        )

    @property
    def panels(self) -> list[Panel]:
        return [item for item in self.items if item.type != "row"]

    @property
    def annotations(self) -> list[Mapping[str, Any]]:
        return mappings(mapping(self.dashboard.get("annotations")).get("list"))

    def finding(self, rule: str, message: str, panel: Panel | None = None) -> Finding:
        where = f"panel {panel.title!r}" if panel else f"dashboard {self.uid!r}"
        return Finding(self.uid, panel.title if panel else "", rule, f"{where}: {message}")

    def prometheus_queries(self) -> Iterator[tuple[Panel | None, str, str]]:
        """(panel or None, where, expr) of every panel target and annotation that queries Prometheus."""
        for panel in self.panels:
            for target in panel.targets:
                if panel.kind(target) == "prometheus":
                    yield panel, f"target {target.get('refId')}", str(target.get("expr") or "")
        for annotation in self.annotations:
            if "expr" in annotation:
                yield None, f"annotation {annotation.get('name')!r}", str(annotation["expr"])
