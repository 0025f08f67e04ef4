from pathlib import Path

import pytest

from vigil.config import ConfigError, load_config
from vigil.runtime.defaults import default_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vigil.yaml"
    path.write_text(text)
    return path


def test_the_shipped_config_and_the_default_are_valid() -> None:
    assert len(load_config(ROOT / "vigil.yaml").signals) >= 10
    assert all(s.scrape is not None for s in default_config().signals)


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
