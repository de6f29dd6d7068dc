"""``faap eval`` behind one call: :func:`run_eval` takes the command's :class:`EvalCommand` and
does what it asks (rescore saved detections, relaunch under torchrun, evaluate a seed set or one
run, checkpoint or the baseline), returning what to print."""

from __future__ import annotations

from faapkit.evaluate.host import Host
from faapkit.evaluate.request import EvalCommand, EvalOutcome


def run_eval(cmd: EvalCommand, host: Host) -> EvalOutcome:
    """Refuse impossible options and a misfiled ``--out``, layer the settings, then do what
    ``cmd`` asks. Every refusal that needs no inference comes before the first inference."""
    from faapkit.evaluate.guards import check_options, check_out
    from faapkit.evaluate.settings import command_layers

    check_options(cmd)
    if cmd.out is not None and cmd.rescore is None:  # found before inference, not when the metrics are written
        check_out(cmd.out, force=cmd.force, not_metrics=host.not_metrics)  # --rescore's, once it knows its file
    layers = command_layers(cmd, host)
    if cmd.rescore is not None:
        from faapkit.evaluate.rescore import refuse_inference_options, rescore_metrics

        refuse_inference_options(cmd)
        return EvalOutcome(result=rescore_metrics(cmd, layers, host))
    if cmd.nproc > 1:
        host.launch(cmd.nproc)  # each rank runs this command again, with one process
        return EvalOutcome()
    reg = host.registries()
    if cmd.target is not None and host.is_seed_set(cmd.target):
        from faapkit.evaluate.seedset import evaluate_seeds

        return EvalOutcome(seeds=evaluate_seeds(cmd, layers, reg, host))
    from faapkit.evaluate.single import evaluate_one

    return EvalOutcome(result=evaluate_one(cmd, layers, reg, host))
