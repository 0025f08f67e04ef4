"""Detection on a fault matrix: recorded once on the real stack, replayed through vigil many times.

    python bench/detection.py plan --seeds 1 2 3                 # the cases, without running anything
    python bench/detection.py record --seeds 1 --out REC         # act them out (~8 min per case)
    python bench/detection.py record-logs REC                    # export logs a recording lacks
    python bench/detection.py replay REC [--config vigil.yaml]   # judge vigil on the recording (minutes)
    python bench/detection.py serve REC --port 9091              # its TSDB, for `vigil backtest` by hand

``record`` plays every case of the plan (``bench/detection_plan.py``: each fault of the marketplace's
catalogue at a severity and in a phase of the sale drawn from the seed, plus a fault-free 5x surge per
seed) and keeps a Prometheus TSDB snapshot, each case's logs and the ground truth. ``replay`` serves
that snapshot from a private Prometheus and runs ``vigil backtest``'s replay (vigil's engine, alert
rule and incidents, on an injected clock at the demo's pace; the logs answer the log collector's reads)
per case, then judges it as the demo does: the first SLO breach,
a static rule at the SLO, a warning rule at half of it, the burn-rate alerts. JSON goes to stdout (and
``--out``), a table to stderr. ``--report-seeds`` keeps the figures of seeds that were not used to
choose defaults apart from the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

if __package__ in (None, ""):
    # Run as `python bench/detection.py`: make `bench` importable from the project root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.detection_plan import plan


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("plan", "record"):
        sub = commands.add_parser(name)
        sub.add_argument("--seeds", type=int, nargs="+", default=[1])
        sub.add_argument("--faults", nargs="+", help="only these faults (default: the whole catalogue)")
        sub.add_argument("--no-surge", action="store_true", help="no fault-free surge case per seed")
        sub.add_argument("--cases", nargs="+", help="only the cases with these ids")
        if name == "record":
            sub.add_argument("--out", type=Path, required=True, help="a new directory for the recording")
            sub.add_argument("--base-users", type=int, default=20)
    replay = commands.add_parser("replay")
    replay.add_argument("recording", type=Path)
    replay.add_argument("--config", type=Path, default=Path("vigil.yaml"))
    replay.add_argument("--report-seeds", type=int, nargs="*", help="seeds reported apart (held out)")
    replay.add_argument("--out", type=Path, help="also write the JSON report here")
    logs = commands.add_parser("record-logs", help="export from Elasticsearch the logs a recording lacks")
    logs.add_argument("recording", type=Path)
    serve = commands.add_parser("serve")
    serve.add_argument("recording", type=Path)
    serve.add_argument("--port", type=int, default=9091)
    args = parser.parse_args(argv)
    err = Console(stderr=True, width=200)
    if args.command == "serve":
        return _serve(args.recording, args.port, err)
    if args.command == "record-logs":
        from bench.detection_record import record_logs
        from vigil.stack.settings import StackSettings

        exported = record_logs(args.recording, StackSettings().elasticsearch_url, err.print)
        err.print(f"exported {exported} log documents")
        return 0
    if args.command == "replay":
        from bench.detection_replay import replay_recording, summary_table

        report = replay_recording(args.recording, args.config, report_seeds=args.report_seeds, say=err.print)
        text = json.dumps(report, indent=1)
        if args.out:
            args.out.write_text(text)
        print(text)
        for view in summary_table(report):
            err.print(view)
        return 0
    cases = plan(args.seeds, args.faults, surge=not args.no_surge)
    if args.cases:
        cases = [c for c in cases if c.id in set(args.cases)]
    if args.command == "plan":
        print(json.dumps([c.to_json() for c in cases], indent=1))
        return 0
    from bench.detection_record import record

    manifest = record(cases, args.out, base_users=args.base_users, say=err.print)
    err.print(f"recorded {len(manifest['cases'])} cases in {args.out}")
    return 0


def _serve(recording: Path, port: int, err: Console) -> int:
    """Serve a recording's TSDB until Ctrl-C, with its faults as ground truth for ``vigil backtest``."""
    import time

    from bench.detection_record import read_manifest
    from bench.detection_replay import ground_truth_lines, served_tsdb

    manifest = read_manifest(recording)
    truth = recording / "ground_truth.jsonl"
    truth.write_text(ground_truth_lines(manifest))
    begin, end = manifest["cases"][0]["started"], manifest["cases"][-1]["ended"]
    with served_tsdb(recording / "prometheus", port=port) as url:
        err.print(
            f"serving {recording}'s TSDB at {url} (Ctrl-C stops it); with a config whose prometheus is it:"
        )
        err.print(f"  vigil backtest -c CONFIG --from {begin:.0f} --to {end:.0f} --ground-truth {truth}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
