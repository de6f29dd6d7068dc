"""The COCO scoring backends ``faap eval`` may use (``eval.coco_backend``): pycocotools (the
default) or faster-coco-eval (the ``fast-coco`` extra), whose C++ ``evaluate``/``accumulate``
give the same 12 stats per group (``tests/eval/test_coco_backend.py`` checks them for equality
on real detections, image- and box-level groups) in a fraction of the time.

Both read the same pycocotools ``COCO`` objects (:func:`faapkit.evaluate.cocoeval.make_coco`,
``load_results``); only the evaluator differs. faster-coco-eval keeps its per-image match
records in C++ (``COCOeval_faster`` fills no ``evalImgs``), so the per-image records the
bootstrap resamples (:class:`faapkit.evaluate.cocoeval.PerImageRecords`) always come from
pycocotools' ``evaluate()`` (:func:`faapkit.evaluate.cocoeval.per_image_eval`): the bootstrap is
the same code, and the same numbers, with either backend.

Box-level groups: :class:`FastGroupCOCOeval` gives the other groups' boxes ``ignore = 1`` in
faster-coco-eval's ground-truth store after its ``_prepare``, as
:class:`faapkit.evaluate.cocoeval.GroupCOCOeval` does in pycocotools' ``_gts``.
"""

from __future__ import annotations

from typing import Any

from faapkit.errors import ConfigError

PYCOCOTOOLS = "pycocotools"
FASTER_COCO_EVAL = "faster-coco-eval"
BACKENDS = (PYCOCOTOOLS, FASTER_COCO_EVAL)
EXTRA = "pip install 'faapkit[fast-coco]'"


def check_backend(name: str, origin: str = "eval.coco_backend") -> None:
    """Refuse, in one line naming ``origin`` and the extra, a backend that is not installed."""
    if name not in BACKENDS:
        raise ConfigError(f"{origin}: unknown COCO backend {name!r}; one of {', '.join(BACKENDS)}")
    if name == FASTER_COCO_EVAL:
        try:
            import faster_coco_eval  # noqa: F401
        except ImportError:
            raise ConfigError(
                f"eval.coco_backend = '{FASTER_COCO_EVAL}' ({origin}) needs the faster-coco-eval package: {EXTRA}"
            ) from None


def fast_evaluator(backend: str, coco_gt: Any, coco_dt: Any, group: str | None) -> Any:
    """faster-coco-eval's bbox ``COCOeval`` of ``group`` (see ``FastGroupCOCOeval``) on
    pycocotools ``COCO`` objects, printing nothing; any other ``backend`` is refused (pycocotools'
    is :class:`faapkit.evaluate.cocoeval.GroupCOCOeval`)."""
    if backend != FASTER_COCO_EVAL:
        raise ConfigError(f"not a faster COCO backend: {backend!r} (backends: {', '.join(BACKENDS)})")
    return _fast_class()(coco_gt, coco_dt, group)


_FAST_CLASS: Any = None


def _fast_class() -> Any:
    """:class:`FastGroupCOCOeval`, built on first use: faster-coco-eval is imported only when it
    is the chosen backend."""
    global _FAST_CLASS
    if _FAST_CLASS is None:
        check_backend(FASTER_COCO_EVAL)
        from faster_coco_eval import COCOeval_faster

        class FastGroupCOCOeval(COCOeval_faster):  # type: ignore[misc]
            """``COCOeval_faster`` (bbox) of one box-level ``group`` (``None``: every box counts)."""

            def __init__(self, coco_gt: Any, coco_dt: Any, group: str | None = None) -> None:
                super().__init__(coco_gt, coco_dt, "bbox", print_function=_quiet)
                self.group = group

            def _prepare(self) -> None:
                super()._prepare()
                if self.group is not None:
                    _flag_other_groups(self, self.group)

        _FAST_CLASS = FastGroupCOCOeval
    return _FAST_CLASS


def _quiet(*_: Any, **__: Any) -> None:
    """faster-coco-eval's ``print_function``: its progress lines are not faap's output."""


def _flag_other_groups(ev: Any, group: str) -> None:
    """Refill ``ev``'s ground-truth store with the boxes of other groups as copies holding
    ``ignore = 1``, in the order ``_prepare`` added them (the ground truth's own annotations stay
    as they are). faster-coco-eval's store keeps references to the dicts it is given, so the
    copies are kept on ``ev`` for as long as it is evaluated."""
    p = ev.params
    gts = ev.cocoGt.loadAnns(ev.cocoGt.getAnnIds(imgIds=p.imgIds, catIds=p.catIds))
    ev._group_gts = [g if g.get("group", group) == group else {**g, "ignore": 1} for g in gts]
    ev.gt_dataset.clean()
    for g in ev._group_gts:
        ev.gt_dataset.append_ref(g["image_id"], g["category_id"], g)
