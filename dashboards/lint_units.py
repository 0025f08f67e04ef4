"""Grafana's unit ids for ops dashboards, from grafana-data's valueFormats/categories.ts (Grafana 10/11).

Grafana shows an unknown unit id as a literal suffix instead of failing, so a typo like `req/s` only shows up
as odd axis labels; the linter checks ids against this list.
"""

from __future__ import annotations

from typing import Any

_UNITS_BY_CATEGORY = {
    "misc": "none string short sishort percent percentunit humidity dB candela hex0x hex sci locale pixel",
    "boolean": "bool bool_yes_no bool_on_off",
    "time": "hertz ns µs ms s m h d dtdurationms dtdurations dthms dtdhms timeticks clockms clocks",
    "date": (
        "dateTimeAsIso dateTimeAsIsoNoDateIfToday dateTimeAsUS dateTimeAsUSNoDateIfToday dateTimeAsLocal "
        "dateTimeAsLocalNoDateIfToday dateTimeAsSystem dateTimeFromNow"
    ),
    "data": (
        "bytes decbytes bits decbits kbytes deckbytes mbytes decmbytes gbytes decgbytes tbytes dectbytes "
        "pbytes decpbytes"
    ),
    "data rate": (
        "pps binBps Bps binbps bps KiBs Kibits KBs Kbits MiBs Mibits MBs Mbits GiBs Gibits GBs Gbits "
        "TiBs Tibits TBs Tbits PiBs Pibits PBs Pbits"
    ),
    "throughput": (
        "cps ops reqps rps wps iops eps mps recps rowsps cpm opm reqpm rpm wpm epm mpm recpm rowspm"
    ),
    "computation": "flops mflops gflops tflops pflops eflops zflops yflops",
    "currency": "currencyUSD currencyGBP currencyEUR",
    "temperature": "celsius fahrenheit kelvin",
    "energy": "watt kwatt megwatt gwatt mwatt watth kwatth joule amp volt",
}
GRAFANA_UNITS = frozenset(unit for units in _UNITS_BY_CATEGORY.values() for unit in units.split())
# Custom units: `suffix:<text>` appends, `prefix:<text>` prepends, `si:<text>` / `count:<text>` scale.
CUSTOM_UNIT_PREFIXES = ("suffix:", "prefix:", "si:", "count:", "currency:", "time:", "bool:")


def is_grafana_unit(unit: Any) -> bool:
    if not isinstance(unit, str):
        return False
    if unit.startswith(CUSTOM_UNIT_PREFIXES):
        return bool(unit.partition(":")[2].strip())
    return unit in GRAFANA_UNITS


def known_units() -> list[str]:
    return sorted(GRAFANA_UNITS)
