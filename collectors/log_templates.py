"""Log message templates mined with Drain (drain3): ``order 42 paid`` and ``order 43 paid`` are one template.

Counting lines per template turns free-text logs into a handful of series a detector can watch: a template
that suddenly grows, or one never seen before, is often the first visible sign of trouble.
"""

from __future__ import annotations

import logging
from pathlib import Path

from drain3 import TemplateMiner
from drain3.file_persistence import FilePersistence
from drain3.masking import MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig

# drain3 logs every new cluster and snapshot at INFO; one line per new template is noise in vigil's logs.
logging.getLogger("drain3").setLevel(logging.WARNING)

# Applied in order, so the specific shapes come before the generic ones that would eat their parts
# (a UUID or an IP address is also a run of numbers). Each pattern is anchored on non-word neighbours
# so that words which merely contain digits or hex letters ("sha256", "added", "orders-eu") survive.
MASKS: tuple[tuple[str, str], ...] = (
    # Quoted values (search terms, SQL fragments, repr() of keys) vary freely and may contain spaces.
    # The guards keep apostrophes inside words ("can't") from opening a quote.
    (r"(?<!\w)\"[^\"\n]*\"(?!\w)", "STR"),
    (r"(?<!\w)'[^'\n]*'(?!\w)", "STR"),
    (r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?![\w-])", "EMAIL"),
    (r"(?<![0-9A-Fa-f-])[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}(?![0-9A-Fa-f-])", "UUID"),
    (r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?(?![\w.])", "IP"),
    # Hex ids: 0x-prefixed, or long runs that contain both a digit and a letter (request ids, hashes),
    # so plain words ("deadbeef" aside) and plain numbers are left to the other masks.
    (r"(?<!\w)0[xX][0-9A-Fa-f]+(?!\w)", "HEX"),
    (r"(?<!\w)(?=[0-9A-Fa-f]*\d)(?=[0-9A-Fa-f]*[A-Fa-f])[0-9A-Fa-f]{8,}(?!\w)", "HEX"),
    (r"(?<![\w.])\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)(?!\w)", "DURATION"),
    # A trailing full stop ends the sentence, but "1.2.3" is a version and stays as it is.
    (r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?!\.?\w)", "NUM"),
)


def default_config(
    sim_th: float = 0.55, depth: int = 4, max_clusters: int | None = None
) -> TemplateMinerConfig:
    """The miner configuration, built in code so no drain3.ini has to be shipped or found.

    sim_th: Drain merges a message into a template when at least this share of tokens match. The
    marketplace's messages are short ("order placed", "order paid"): at 0.5 two-word messages differing
    in one word would merge into "order <*>", so the threshold sits just above it. Longer messages with a
    single unmasked variable word (3 tokens: 0.67) still share a template.
    depth: 4 is Drain's usual value: the tree routes on token count plus the first two tokens.
    """
    config = TemplateMinerConfig()
    config.drain_sim_th = sim_th
    config.drain_depth = depth
    config.drain_max_clusters = max_clusters
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in MASKS]
    config.mask_prefix, config.mask_suffix = "<", ">"
    # Snapshots are written on every template change anyway; the periodic one only adds I/O.
    config.snapshot_interval_minutes = 60
    config.snapshot_compress_state = True
    return config


class LogTemplates:
    """A thin wrapper around drain3's ``TemplateMiner``.

    Template ids are drain3 cluster ids as strings: they never change for a cluster, while the template
    text may generalise over time (``order placed`` -> ``order <*>``) as more messages arrive. With
    ``state_path`` the miner's clusters are saved to that file on every change and loaded on start, so
    ids (and the series labelled with them) survive restarts.
    """

    def __init__(
        self,
        state_path: Path | str | None = None,
        *,
        sim_th: float = 0.55,
        depth: int = 4,
        max_clusters: int | None = None,
    ) -> None:
        self.state_path = Path(state_path) if state_path is not None else None
        persistence = None
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            persistence = FilePersistence(str(self.state_path))
        self.miner = TemplateMiner(persistence, default_config(sim_th, depth, max_clusters))

    def add(self, message: str) -> tuple[str, str]:
        """Learn from ``message``; return its template id and the template's current text."""
        result = self.miner.add_log_message(message)
        return str(result["cluster_id"]), str(result["template_mined"])

    def mask(self, message: str) -> str:
        """``message`` with its variable parts masked, as Drain sees it (useful to debug the patterns)."""
        return str(self.miner.masker.mask(message))

    def template(self, template_id: str) -> str | None:
        """The current text of a template, or None for an unknown (or evicted) id."""
        try:
            cluster = self.miner.drain.id_to_cluster.get(int(template_id))
        except ValueError:
            return None
        return None if cluster is None else str(cluster.get_template())

    def templates(self) -> dict[str, str]:
        """Every known template id with its text."""
        return {str(c.cluster_id): str(c.get_template()) for c in self.miner.drain.clusters}

    def __len__(self) -> int:
        return len(self.miner.drain.clusters)
