from pathlib import Path

import pytest
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
    known = "latency, backlog, payment-latency, errors, cache-outage, surge"
    assert f"unknown scenario 'friday'; known: {known}" in result.output


def test_demo_without_a_config_file_says_where_it_looked(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--config", str(tmp_path / "missing.yaml"), "--no-live"])
    assert result.exit_code == 1
    assert "missing.yaml not found" in result.output


def test_demo_prints_events_line_by_line_when_its_output_is_not_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A live panel piped into a file or `tee` would show nothing until the end.
    import vigil.console
    import vigil.demo.run

    chosen: list[bool] = []

    def record(options: vigil.demo.run.DemoOptions, _console: object) -> None:
        chosen.append(options.live)
        raise vigil.demo.run.DemoError("stopped by the test")

    monkeypatch.setattr(vigil.demo.run, "run_demo", record)
    for terminal, flags, expected in [
        (False, [], False),
        (True, [], True),
        (True, ["--no-live"], False),
        (False, ["--live"], True),
    ]:
        monkeypatch.setattr(vigil.console.console, "_force_terminal", terminal)
        runner.invoke(app, ["demo", "--out", str(tmp_path), *flags])
        assert chosen.pop() is expected, (terminal, flags)


def test_dlq_replay_names_the_queues_it_knows() -> None:
    result = runner.invoke(app, ["marketplace", "dlq", "replay", "orders.nosuch"])
    assert result.exit_code == 2
    assert "unknown queue 'orders.nosuch'" in result.output
    assert "payments.order-placed" in result.output


def test_dlq_list_says_which_broker_it_could_not_reach(monkeypatch: pytest.MonkeyPatch) -> None:
    from vigil.stack.private_prometheus import free_port

    monkeypatch.setenv("VIGIL_STACK_RABBITMQ_PORT", str(free_port()))  # nothing listens there
    result = runner.invoke(app, ["marketplace", "dlq", "list"])
    assert result.exit_code == 1
    assert "cannot reach RabbitMQ at 127.0.0.1:" in result.output
    assert "vigil:vigil" not in result.output  # no credentials in the message
