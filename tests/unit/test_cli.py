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
