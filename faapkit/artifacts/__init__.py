"""What a training run leaves on disk: the run folder (``run.json``, ``train_log.jsonl``,
``checkpoints/``; ``rundir`` is torch-free, ``faap compare`` reads run folders) and what its
checkpoints hold (``checkpoint``)."""
