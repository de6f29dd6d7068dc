"""What ``faap compare`` (and ``faap inspect run``) decide, torch-free; ``faapkit.cli.compare``
keeps the options and the printing.

One module per job, behind this one:

- ``records``: :class:`RunRecord`, one (run, epoch, split), what every reader returns (the plugin
  API re-exports it);
- ``reading``: a faapkit run folder or loose metrics file, each metrics file checked first;
- ``discovery``: walking the paths, offering what faapkit does not read to ``faap_read_run``
  (built-in: the research scripts' folders, ``faap_plugins.legacy_runs``); ``describe_run``;
- ``merging``: a rescore that repeats an evaluation left out, copies merged, baselines filled;
- ``datasets``: which records were measured on one dataset (fingerprints per split);
- ``gather``: the above in order, from paths to records; which files an output must not replace;
- ``rows``: one flat row per record (gaps by ``faapkit.fairness``), which rows are shown, seed sets;
- ``selection``: ``--best-per-run``, by the trainer's rule (``faapkit.train.selection.choose``);
- ``options``: the option values and outputs refused before any run is read;
- ``columns``: the rows as text: the table's columns, TSV, CSV, the across-seeds cells;
- ``layout``: which columns a table shows at a terminal width, and how wide each is;
- ``plot``: ``--plot``, the AP gap per epoch (matplotlib, imported only there).
"""

from faapkit.compare.datasets import assign_datasets
from faapkit.compare.discovery import describe_run, discover
from faapkit.compare.gather import gather, run_artefact
from faapkit.compare.merging import drop_rescores, fill_baselines, merge_copies
from faapkit.compare.reading import LeftOut
from faapkit.compare.records import RunRecord, as_record, train_only_records
from faapkit.compare.rows import LOG_ONLY, arrange, ci_levels, seed_sets, summarize
from faapkit.compare.selection import select_on_val

__all__ = [
    "LOG_ONLY",
    "LeftOut",
    "RunRecord",
    "arrange",
    "as_record",
    "assign_datasets",
    "ci_levels",
    "describe_run",
    "discover",
    "drop_rescores",
    "fill_baselines",
    "gather",
    "merge_copies",
    "run_artefact",
    "seed_sets",
    "select_on_val",
    "summarize",
    "train_only_records",
]
