"""What ``faap compare`` (and ``faap inspect run``) decide: which run folders and metrics files
there are, the records read from them, which records share a dataset, the epoch chosen on val,
and the rows. Torch-free. ``faapkit.cli.compare`` keeps the options and the printing.
"""

from faapkit.compare.datasets import assign_datasets
from faapkit.compare.reading import (
    LeftOut,
    describe_run,
    discover,
    drop_rescores,
    fill_baselines,
    merge_copies,
    read_metrics_file,
    select_on_val,
    summarize,
)
from faapkit.compare.records import RunRecord, as_record, train_only_records

__all__ = [
    "LeftOut",
    "RunRecord",
    "as_record",
    "assign_datasets",
    "describe_run",
    "discover",
    "drop_rescores",
    "fill_baselines",
    "merge_copies",
    "read_metrics_file",
    "select_on_val",
    "summarize",
    "train_only_records",
]
