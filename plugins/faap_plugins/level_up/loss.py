"""The level-up version's loss: lower the disadvantaged group's detection loss, leave the
advantaged group unharmed.

``total = L_det(disadvantaged images)
        + advantaged_weight * L_det(advantaged images)
        + keep_weight * mean((delta_advantaged / epsilon)^2)``

The first term is the DETR set loss of the disadvantaged rows alone, so no advantaged image
dilutes it (the research versions minimise the whole batch's loss, which mostly improves whoever
is already detected well). The last term is the guard: the generator is pushed to leave the
advantaged group's images as they are, so what it learns is specific to the group that needs it,
and the advantaged group's AP cannot be bought down. ``advantaged_weight`` (0 by default) lets the
advantaged group share in gains instead.

Box-level groups (an image may hold people of both groups): ``L_det(disadvantaged)`` is the loss of
the disadvantaged people's boxes over every image holding one, under the whole loss's matching, the
unmatched queries' no-object term shared (``LossInputs.detection_of_group``); likewise the
advantaged term. The keep term applies to the images holding advantaged people only (group 1): a
mixed image is where the disadvantaged boxes are.
"""

from __future__ import annotations

from faapkit.plugin_api import LossInputs, LossOutput, LossStrategy


class LevelUpDetection(LossStrategy):
    head_in_generator_optimizer = False

    def __init__(self, advantaged_weight: float = 0.0, keep_weight: float = 0.0) -> None:
        self.advantaged_weight = advantaged_weight
        self.keep_weight = keep_weight

    def skip_reason(self, groups) -> str | None:  # type: ignore[no-untyped-def]
        return None if bool((groups == 0).any()) else "no disadvantaged image in the batch"

    def __call__(self, x: LossInputs) -> LossOutput:
        if x.detection_of is None or x.delta is None or not x.epsilon:
            raise RuntimeError("level-up needs the engine's per-subset detection loss, delta and epsilon")
        dis, adv = x.index(0), x.index(1)
        by_box = x.box_level
        loss_dis = x.detection_of_group(0) if by_box else x.detection_of(dis)
        total = loss_dis
        terms = {"loss_det_dis": loss_dis.detach()}
        if len(adv):
            keep = (x.delta[adv].float() / x.epsilon).pow(2).mean()
            total = total + self.keep_weight * keep
            terms["keep_adv"] = keep.detach()
        if self.advantaged_weight > 0 and len(x.holding(1) if by_box else adv):
            loss_adv = x.detection_of_group(1) if by_box else x.detection_of(adv)
            total = total + self.advantaged_weight * loss_adv
            terms["loss_det_adv"] = loss_adv.detach()
        return LossOutput(total, terms)
