"""faap train's live progress: the step bar ends at its total, validation shows its own
progress, and a run stopped early says at which epoch and step and how to continue."""

from __future__ import annotations

from types import SimpleNamespace

from faapkit.cli.progress import TrainReporter
from faapkit.train.start import interrupted_message, stop_position


class _Meters:
    def means(self) -> dict[str, float]:
        return {"total": 1.5, "loss_det": 1.5}


def test_the_step_bar_never_passes_its_total():
    """The trainer counts a step done before it reports it: a 3-step epoch ends at 3/3, not 4/3."""
    reporter = TrainReporter(enabled=False)
    reporter.start_epoch(0, 3, 0)
    seen = []
    for position in (1, 2, 3):  # as the trainer calls it: position already counts this step
        state = SimpleNamespace(meters=_Meters(), images=4 * position, skips={}, position=position)
        reporter.step(state, 0.09, 1e-3)
        task = reporter.progress.tasks[0]
        seen.append((task.completed, task.total))
    assert seen == [(1, 3), (2, 3), (3, 3)]
    reporter.start_epoch(1, 3, 2)  # a resumed epoch starts where its checkpoint left it
    assert reporter.progress.tasks[0].completed == 2


def test_validation_shows_its_progress_in_images():
    reporter = TrainReporter(enabled=False)
    reporter.start_epoch(4, 3, 0)
    for done in (8, 16, 20):
        reporter.validating(4, done, 20)
    task = reporter.progress.tasks[0]
    assert (task.completed, task.total) == (20, 20)
    assert task.fields["epoch"] == "4 val" and task.fields["info"] == "images"


def test_a_stopped_run_says_where_and_how_to_continue(tmp_path):
    where = stop_position(2, 1, 3, 7)
    assert where == "at epoch 2, step 1 of 3 (global step 7)"
    (tmp_path / "checkpoints").mkdir()
    line = interrupted_message(tmp_path, where)
    assert line == "interrupted at epoch 2, step 1 of 3 (global step 7): no checkpoint yet; " + (
        f"continue with faap train --resume {tmp_path}"
    )


def test_a_run_stopped_by_max_steps_says_where_and_how_to_continue(tmp_path, capsys):
    from faapkit.cli.train import _report_done

    summary = {"epochs_done": 0, "global_step": 1, "stopped": {"epoch": 0, "step": 1, "steps_per_epoch": 2}}
    _report_done({"epoch": 0}, summary, tmp_path, False)
    err = " ".join(capsys.readouterr().err.split())
    assert "stopped by train.max_steps at epoch 0, step 1 of 2 (global step 1)" in err
    assert f"continue with faap train --resume {tmp_path} --max-steps N (N above 1)" in err
