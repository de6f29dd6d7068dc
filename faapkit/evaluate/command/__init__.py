"""``faap eval`` and ``faap probe headroom`` as commands: what their options resolve to, what
they refuse before any inference, where they write, and what they show. The library they call
(the evaluator, scoring, COCO evaluation, inference) is the package above, which never imports
this one.

* :mod:`.flow`: ``faap eval`` step by step (:func:`run_eval`; one run, a seed set);
* :mod:`.checkpoint_choice`: which checkpoint ``faap eval RUN`` evaluates;
* :mod:`.settings`: the option checks, the layered ``[eval]`` settings, the run's data and
  detector, the gap's pair;
* :mod:`.outputs`: where the metrics go and what is never overwritten unasked;
* :mod:`.rescore`: ``faap eval --rescore``;
* :mod:`.result_rows`: the table's rows, as data;
* :mod:`.probe`: ``faap probe headroom``;
* :mod:`.host`: what the CLI provides (console, plugins, torchrun, trackers).
"""

from faapkit.evaluate.command.flow import run_eval

__all__ = ["run_eval"]
