from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigil.config import ConfigError, ShardConfig, VigilConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(text)
    return path


def test_the_shipped_config_watches_what_the_system_file_describes() -> None:
    config = load_config(ROOT / "vigil.yaml")
    assert config.system == (ROOT / "demo_marketplace" / "system.yaml").resolve()  # relative to the file
    names = {s.name for s in config.signals}
    assert {
        "http_p99_latency_seconds",
        "queue_depth_messages",
        "postgresql_up",
        "slo_fulfilment_delay",
    } <= names
    assert all(s.metric is not None or s.inputs is not None for s in config.signals)  # no PromQL written


SMALL_SYSTEM = """
name: shop
services: [{name: web, calls: [api]}, {name: api, uses: [db]}]
components: [{name: db, kind: postgresql, selector: {job: pg}}]
slos: [{name: web-latency, service: web, kind: latency, objective: 0.99, threshold_seconds: 0.5}]
"""


def test_signals_in_the_config_replace_derived_ones_by_name_and_add_to_them(tmp_path: Path) -> None:
    (tmp_path / "system.yaml").write_text(SMALL_SYSTEM)
    config = load_config(
        write(
            tmp_path,
            """
system: system.yaml
step: 30s
sources: {prometheus: {url: http://127.0.0.1:9090}}
signals:
  - {name: http_request_rate, query: 'sum by (job) (rate(requests_total[5m]))', step: 1m}
  - {name: checkout_value, query: 'sum(rate(orders_value_total[5m]))'}
""",
        )
    )
    by_name = {s.name: s for s in config.signals}
    assert by_name["http_request_rate"].query == "sum by (job) (rate(requests_total[5m]))"  # replaced
    assert by_name["http_request_rate"].step == 60.0
    assert by_name["checkout_value"].step == 30.0  # the config's step
    assert by_name["db_up"].metric is not None  # derived: the component's health
    assert by_name["db_up"].step == 30.0
    assert by_name["http_5xx_per_step"].metric is not None
    assert by_name["http_5xx_per_step"].metric.scale == 30.0  # events per step, at the config's step
    assert "slo_web_latency" in by_name
    no_derived = VigilConfig.model_validate(
        {"system": str(tmp_path / "system.yaml"), "derive_signals": False, "sources": {}}
    )
    assert no_derived.signals == []


def test_a_broken_system_file_is_a_config_error_naming_both_files(tmp_path: Path) -> None:
    (tmp_path / "system.yaml").write_text(SMALL_SYSTEM.replace("calls: [api]", "calls: [apj]"))
    with pytest.raises(
        ConfigError,
        match=r"(?s)vigil.yaml: system: .*system.yaml.*services\[0\]\.calls\[0\]: "
        r"unknown service 'apj' \(did you mean 'api'\?\)",
    ):
        load_config(write(tmp_path, "system: system.yaml\nsources: {prometheus: {url: x}}"))
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: no such file"):
        load_config(write(tmp_path, "system: nowhere.yaml\nsources: {prometheus: {url: x}}"))


def test_a_wrong_field_is_reported_with_its_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
sources: {prometheus: {url: http://127.0.0.1:9090}}
signals:
  - {name: ok_signal, query: up}
  - {name: bad_step, query: up, step: fast}
""",
    )
    with pytest.raises(ConfigError, match=r"signals\.1\.step: .*not a duration: 'fast'"):
        load_config(path)


def test_unknown_fields_and_missing_sources_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"signals\.0\.qeury: Extra inputs are not permitted"):
        load_config(write(tmp_path, "signals: [{name: a, qeury: up}]"))
    with pytest.raises(ConfigError, match=r"signals with `query` need sources\.prometheus"):
        load_config(write(tmp_path, "signals: [{name: a, query: up}]"))
    with pytest.raises(ConfigError, match="exactly one of `query`"):
        load_config(write(tmp_path, "sources: {prometheus: {url: x}}\nsignals: [{name: a}]"))
    with pytest.raises(ConfigError, match="repeated: a"):
        load_config(
            write(
                tmp_path,
                "sources: {prometheus: {url: x}}\nsignals: [{name: a, query: up}, {name: a, query: up}]",
            )
        )


def test_unreadable_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "signals: [unclosed"))


def test_detector_parameters_are_checked_against_the_detector(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"signals\.0\.detector: .*unknown detector 'nope'"):
        load_config(
            write(
                tmp_path,
                "sources: {prometheus: {url: x}}\nsignals: [{name: a, query: up, detector: {kind: nope}}]",
            )
        )
    with pytest.raises(ConfigError, match=r"signals\.0\.detector: .*rolling_mad.*windw"):
        load_config(
            write(
                tmp_path,
                "sources: {prometheus: {url: x}}\nsignals: [{name: a, query: up, detector: {windw: 5}}]",
            )
        )


def test_joined_inputs_are_checked_against_the_signals_and_the_detector(tmp_path: Path) -> None:
    head = "sources: {prometheus: {url: x}, scrape: {}}\nsignals:\n  - {name: bad, query: a}\n"
    cases = {
        "  - {name: j, inputs: [bad, nope], detector: {kind: burn_rate}}": "unknown inputs nope",
        "  - {name: j, inputs: [bad, bad], detector: {kind: rolling_mad}}": "takes one series",
        "  - {name: j, query: up, detector: {kind: burn_rate}}": "must join other signals",
        "  - {name: j, inputs: [bad, log_lines], detector: {kind: burn_rate}}": "must come from one source",
    }
    for extra, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config(write(tmp_path, head + extra))
    ok = load_config(write(tmp_path, head + "  - {name: j, inputs: [bad, bad], detector: {kind: burn_rate}}"))
    assert ok.signals[1].detector.input_kind == "events"


def test_a_shard_is_index_of_count() -> None:
    assert ShardConfig.parse("1/3") == ShardConfig(index=1, count=3)
    for text in ("3/3", "x/2", "1"):
        with pytest.raises(ValueError, match="not a shard"):
            ShardConfig.parse(text)


def test_excluded_windows_and_calibration_reach_the_detectors(tmp_path: Path) -> None:
    from vigil.collectors.model import SeriesKey
    from vigil.detectors.calibration import Calibrated
    from vigil.detectors.exclusion import Excluding
    from vigil.runtime.build import detector_factory

    config = load_config(
        write(
            tmp_path,
            """
sources: {prometheus: {url: x}}
signals:
  - {name: p99, query: a, detector: {kind: seasonal_baseline, calibrate: {quantile: 0.99}}}
  - {name: rate, query: b}
exclude:
  - {start: 2026-11-20T10:00:00Z, end: 2026-11-20T11:30:00Z, signals: [p99], reason: bad deploy}
  - {start: 1795000000, end: 1795003600}
""",
        )
    )
    deploy = datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp()
    assert (config.exclude[0].start, config.exclude[0].end) == (deploy, deploy + 5400)
    detector_for = detector_factory(config)
    p99 = detector_for(SeriesKey("p99"))
    assert isinstance(p99, Excluding)
    assert p99.windows == [(deploy, deploy + 5400), (1795000000.0, 1795003600.0)]
    assert isinstance(p99.detector, Calibrated)
    assert p99.detector.quantile == 0.99
    rate = detector_for(SeriesKey("rate"))
    assert isinstance(rate, Excluding)
    assert rate.windows == [(1795000000.0, 1795003600.0)]


def test_bad_exclusion_windows_are_named(tmp_path: Path) -> None:
    head = "sources: {prometheus: {url: x}}\nsignals: [{name: a, query: up}]\n"
    cases = {
        "exclude: [{start: 20, end: 10}]": "must start before it ends",
        "exclude: [{start: yesterday, end: 10}]": "not a time: 'yesterday'",
        "exclude: [{start: 1, end: 10, signals: [nope]}]": "exclude: unknown signals nope",
    }
    for extra, message in cases.items():
        with pytest.raises(ConfigError, match=message):
            load_config(write(tmp_path, head + extra))


def test_a_shard_index_can_be_a_statefulset_pod_name() -> None:
    # `--shard $(POD_NAME)/3` in a StatefulSet: the pod's ordinal is the index.
    assert ShardConfig.parse("vigil-2/3") == ShardConfig(index=2, count=3)
    assert ShardConfig.parse("vigil-detect-0/1") == ShardConfig(index=0, count=1)
    assert ShardConfig.parse("web.v2-11/12") == ShardConfig(index=11, count=12)
    bad = ("vigil-3/3", "vigil/3", "vigil-/3", "vigil-x/3", "-1/3", "vigil-1", "vigil-1/3/4", "vigil-1/0")
    for text in bad:
        with pytest.raises(ValueError, match="not a shard"):
            ShardConfig.parse(text)


def test_a_system_file_given_on_the_command_line_replaces_the_configs(tmp_path: Path) -> None:
    observatory = Path(__file__).resolve().parents[1] / "systems" / "observatory.yaml"
    path = tmp_path / "vigil.yaml"
    path.write_text("system: nowhere.yaml\nsources: {prometheus: {url: 'http://127.0.0.1:9090'}}\n")
    config = load_config(path, system=observatory)
    assert config.system == observatory
    names = {s.name for s in config.signals}
    assert {"slo_portal_latency", "slo_archive_availability"} <= names


def test_notification_timing_and_maintenance_say_they_moved_to_alertmanager(tmp_path: Path) -> None:
    config = """
sources: {prometheus: {url: http://127.0.0.1:9090}}
signals: [{name: a, query: up}]
alerting: {group_wait: 30s, maintenance: [{start: 0, end: 1}]}
"""
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, config))
    message = str(raised.value)
    assert "alerting" in message
    assert "group_wait: now Alertmanager's route group_wait" in message
    assert "maintenance: now an Alertmanager silence planned ahead: `vigil alerts silence" in message
