from pathlib import Path

from typer.testing import CliRunner

from vigil.cli import app

runner = CliRunner()


def test_help_lists_the_subcommands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "stack" in result.output
    assert "demo" in result.output


def test_stack_rejects_unknown_components() -> None:
    result = runner.invoke(app, ["stack", "status", "nosuch"])
    assert result.exit_code == 2
    assert "unknown component(s) nosuch" in result.output


def test_demo_names_the_scenarios_it_knows() -> None:
    result = runner.invoke(app, ["demo", "--scenario", "friday"])
    assert result.exit_code == 2
    assert (
        "unknown scenario 'friday'; known: latency, backlog, payment-latency, errors, surge" in result.output
    )


def test_demo_without_a_config_file_says_where_it_looked(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--config", str(tmp_path / "missing.yaml"), "--no-live"])
    assert result.exit_code == 1
    assert "missing.yaml not found" in result.output
