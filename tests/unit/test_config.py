from datetime import UTC, datetime
from pathlib import Path

import pytest

from vigil.config import ConfigError, ShardConfig, load_config
from vigil.runtime.defaults import default_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(text)
    return path


def test_the_shipped_config_and_the_default_are_valid() -> None:
    assert len(load_config(ROOT / "vigil.yaml").signals) >= 10
    assert all(s.scrape is not None or s.inputs is not None for s in default_config().signals)


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
        "  - {name: s, scrape: {metric: m, kind: gauge}}\n"
        "  - {name: j, inputs: [bad, s], detector: {kind: burn_rate}}": "inputs must come from one source",
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
