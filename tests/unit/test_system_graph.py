"""`vigil system graph`: the service map, laid out by the flow of requests and messages."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from vigil.cli import app
from vigil.system import load_system, parse_system
from vigil.system.graph import Edge, draw, layers, nodes_and_edges

OBSERVATORY = Path(__file__).resolve().parents[1] / "systems" / "observatory.yaml"


def test_the_map_holds_calls_queues_components_and_shared_tables() -> None:
    nodes, edges = nodes_and_edges(load_system(OBSERVATORY))
    assert nodes["portal"] == "service"
    assert nodes["queue:raw-frames"] == "queue"
    assert nodes["bus"] == "component"
    assert Edge("portal", "archive", "calls") in edges
    assert Edge("archive", "queue:raw-frames", "publishes") in edges
    assert {e.target for e in edges if e.source == "queue:raw-frames"} == {"calibrator", "thumbnailer", "bus"}
    assert Edge("scheduler", "ledger", "uses") in edges


def test_layers_follow_requests_then_messages_and_components_come_last() -> None:
    nodes, edges = nodes_and_edges(load_system(OBSERVATORY))
    layer = layers(nodes, edges)
    assert layer["portal"] < layer["archive"] < layer["queue:raw-frames"] < layer["calibrator"]
    assert layer["calibrator"] == layer["thumbnailer"]
    assert {layer[c] for c in ("ledger", "vault", "bus")} == {max(layer.values())}


def test_a_call_cycle_still_gets_a_layout() -> None:
    system = parse_system(
        "name: loop\nservices:\n  - {name: a, calls: [b]}\n  - {name: b, calls: [a]}\n", "loop.yaml"
    )
    nodes, edges = nodes_and_edges(system)
    assert set(layers(nodes, edges)) == {"a", "b"}


def test_draw_writes_a_png(tmp_path: Path) -> None:
    path = draw(load_system(OBSERVATORY), tmp_path / "maps" / "observatory.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000  # a drawing, not an empty canvas


def test_cli_draws_the_map_and_refuses_an_invalid_file(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["system", "graph", str(OBSERVATORY), "-o", str(tmp_path / "map.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "map.png").exists()
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nservices:\n  - {name: a, calls: [nobody]}\n")
    result = runner.invoke(app, ["system", "graph", str(broken), "-o", str(tmp_path / "no.png")])
    assert result.exit_code == 1
    assert "services[0].calls[0]: unknown service 'nobody'" in result.output
    assert not (tmp_path / "no.png").exists()
