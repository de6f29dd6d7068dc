"""Evaluation: per-group COCO AP/AR of baseline and perturbed inputs, gaps, ratios and shares of
the gap closed, each with its paired bootstrap CI.

The library, here:

* :mod:`.requests`: the records, torch-free: ``EvalCommand`` (``faap eval``'s options),
  ``EvalRequest`` (one evaluation; its settings one ``EvalConfig``), the outcomes, and the
  headroom probe's pair of records;
* :mod:`.evaluator`: one evaluation: load the generator, infer (baseline cached), score, report;
* :mod:`.inference`: batched inference to COCO records;
* :mod:`.scoring`: per-group and overall metrics, gaps, ratios and the paired bootstrap;
* :mod:`.cocoeval` and :mod:`.coco_backend`: per-group COCO evaluation, per-image records that the
  bootstrap re-accumulates, the backend of the 12 stats;
* :mod:`.detections`: saved detections, for ``--rescore``;
* :mod:`.headroom`: the oracle probe; :mod:`.across_seeds`: the spread over a seed set's runs;
  :mod:`.perturbation`: what ``faap inspect perturbation`` draws.

The commands on top of it, :mod:`faapkit.evaluate.command` (see its docstring): ``faap eval``
step by step in :mod:`~faapkit.evaluate.command.flow`.

Where to look:

* how ``faap eval RUN`` picks its checkpoint: :mod:`faapkit.evaluate.command.checkpoint_choice`
  (``resolve_target``: the run's ``best.pt``, checked against ``selection.json``; ``--epoch N``;
  else the highest step);
* where the share closed and its CI are computed: the rule in :mod:`faapkit.fairness`
  (``share_closed``, beside the gap and ratio, and ``defined_in_every_resample`` for a CI), applied
  to the point estimates and to every bootstrap resample in :mod:`faapkit.evaluate.scoring`
  (``score``, ``bootstrap``).
"""
