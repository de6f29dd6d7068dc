"""The method search of docs/effect-diagnosis.md, registered through the ``faap`` entry-point group
(the winner of the search, the encoder-aware hypothesis, is built in as the ``transformer-aware``
generator). Built on ``faapkit.plugin_api`` alone: the built-in generators, level-up's loss and
options, and ``VersionSpec(extends=...)``.

- generator ``gradient-aware``: the detector-aware generator plus the gradient, with respect to
  the clean input, of two ground-truth-free signals of the frozen detector: its confidence
  ``sum_q max_c p(c|q)`` and the box disagreement between its last two decoder layers
  ``sum_q p_q * |b_L - b_{L-1}|_1`` (p detached). Each ``(B, 3, H, W)`` map is divided by its
  per-image RMS; the six channels reach the generator at full resolution (3x3 conv onto the
  pre-tanh delta) and at 1/4 resolution (4x4 stride-4 conv onto its features), both zero-initialised.
  The generator can thus learn a per-image step along directions the detector itself reveals.
- generator ``refine-steps``: a learned optimiser at test time. The transformer-aware generator's
  delta (``level-up``'s default) is refined by ``steps`` signed-gradient steps on the perturbed image, each along two
  ground-truth-free signals of the frozen detector (its confidence and its last two decoder
  layers' box disagreement, as ``gradient-aware``), with learned step sizes per step and signal
  (fractions of epsilon, zero at the start, either sign), clipped to ``|delta| <= epsilon``:
  ``delta_{k+1} = clip(delta_k + eps * (a_k sign(g_conf) + b_k sign(g_unc)))``.
- generator ``critic-refine``: ``refine-steps`` with a learned signal instead of the two chosen
  ones. A critic (``QueryCritic``, in the generator so the optimiser trains it) maps each query's
  last-decoder-layer features ``(B, Q, D)`` (layer-normed), its confidence ``p_q = max_c p(c|q)``
  and its box ``(cx, cy, w, h)`` to a logit of its box quality ``q_hat``; the delta is refined by
  ``steps`` signed-gradient steps that ascend the confident queries' predicted quality,
  ``delta_{k+1} = clip(delta_k + eps * a_k sign(grad_x sum_q p_q sigmoid(q_hat_q)))`` at
  ``x + delta_k``, ``p_q`` detached (the weight, not the signal), ``a_k`` learned (fractions of
  epsilon, zero at the start, either sign), clipped to ``|delta| <= epsilon`` (the valid region is
  applied by ``apply_perturbation``, as for every generator). No ground truth at test time.
- version ``level-up-critic``: ``critic-refine`` trained with level-up's loss plus the critic's,
  ``critic_weight * BCE(q_hat, quality)`` over every query of the batch's perturbed detections,
  where ``quality`` is the IoU of a query's box with the ground-truth box it is Hungarian-matched
  to (``LossInputs.indices``, the step's own matching; any group: the critic judges boxes, not
  groups, as at test time) and 0 for an unmatched query. The critic reads the step's outputs
  detached, so its term trains the critic alone and never pulls the generator; the generator
  reaches the critic through ``LossInputs.generator``. Logged: ``critic_bce``, ``critic_mae``
  (mean ``|sigmoid(q_hat) - quality|``) and ``critic_mae_matched`` (over the matched queries).
  Each step costs a forward-backward of the detector, in training and at test time: at
  ``steps=1``, 2.4-3.8x level-up's training time per epoch on the shared 2-core CPU machine.
- generator ``every-layer-aware``: the transformer-aware generator with the cross-attention of
  every decoder layer instead of the last one only, each as two maps: weighted by that layer's own
  query confidence (as ``transformer-aware``) and the plain mean over every query (where the
  detector looks whether or not a query fires), ``2 L`` channels of ``(B, 1, h, w)``, mean 1 per image.
- lr schedule ``cosine_restarts``: level-up's warmup, then cosine cycles of ``cycle`` epochs
  from ``peak_decay**k`` down to ``min_factor`` (SGDR): the learning rate rises again after each
  cycle instead of decaying once over the whole run.
- version ``level-up-hardbox``: level-up's loss plus a per-box term on the disadvantaged group's
  matched boxes, ``lambda * mean_i w_i * (L1_i + (1 - GIoU_i))`` with ``w_i = (1 - IoU_i)^gamma``
  (detached, normalised to mean 1): the worst-localised boxes weigh most.
- version ``level-up-distill``: level-up's loss plus distillation from the oracle of
  ``faap probe headroom`` on the train images, ``distill_weight * mean_i mean_valid((delta_i -
  t_i) / epsilon)^2`` over the disadvantaged images ``i`` (box level: those holding a
  disadvantaged person), each over its valid region. The teacher ``t_i (3, H, W)`` has ground
  truth: ``teacher_steps`` signed-gradient steps of ``teacher_step * epsilon`` on the
  disadvantaged group's DETR set loss (``LossInputs.detection_on``, ``signed_descent``), from the
  student's own ``delta.detach()``, clipped to ``|t| <= epsilon`` and the valid region, a
  constant target (no graph to the generator). Logged: ``distill`` and the teacher's own
  ``loss_det_dis_teacher`` beside the student's ``loss_det_dis`` (the teacher must be the lower,
  or its target means nothing). Costs ``teacher_steps`` forward-backward passes of the detector
  on the disadvantaged images and one forward per step: 3.1x level-up's time per epoch at the
  defaults (docs/effect-diagnosis.md section 15).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import Field

from faapkit.plugin_api import (
    GeneratorSpec,
    LevelUpOptions,
    LossSpec,
    Options,
    ScheduleSpec,
    VersionSpec,
    hookimpl,
)


class GradOptions(Options):
    channels: int = Field(32, ge=2)
    tile: int = Field(16, gt=0)


class RefineOptions(GradOptions):
    steps: int = Field(2, ge=1, le=8)


class CriticRefineOptions(GradOptions):
    steps: int = Field(1, ge=1, le=8, description="signed-gradient steps up the critic's predicted quality")
    hidden: int = Field(64, ge=1, description="the critic's hidden width")


class RestartOptions(Options):
    warmup: int = Field(2, ge=0)
    cycle: int = Field(32, gt=0, description="epochs per cosine cycle after the warmup")
    min_factor: float = Field(0.01, ge=0, le=1, description="lr_min / lr at the end of each cycle")
    peak_decay: float = Field(1.0, gt=0, le=1, description="each cycle's peak is this times the previous one's")


def cosine_restarts(epoch: int, total: int, *, warmup: int, cycle: int, min_factor: float, peak_decay: float) -> float:
    """LR factor: linear warmup, then cosine cycles of ``cycle`` epochs, cycle k from ``peak_decay**k``
    to ``min_factor``."""
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    k, into = divmod(epoch - warmup, cycle)
    peak = peak_decay**k
    progress = into / max(1, cycle - 1)
    return min_factor + 0.5 * (peak - min_factor) * (1 + math.cos(math.pi * progress))


class HardBoxOptions(LevelUpOptions):
    box_weight: float = Field(1.0, ge=0)
    gamma: float = Field(1.0, ge=0)


class DistillOptions(LevelUpOptions):
    # measured on detr-synth-tiny-v3 (docs/effect-diagnosis.md section 15): at 3000 the distill
    # term's gradient on the generator is about as large as level-up's detection loss's, at 1 ~1/4000
    distill_weight: float = Field(3000.0, ge=0, description="weight of mean ((delta - teacher) / epsilon)^2")
    teacher_steps: int = Field(3, ge=1, le=20, description="the teacher's signed-gradient steps from the student")
    # steps of 0.1 epsilon or more raise the set loss above the student's (the tiny DETR's loss is
    # rough at that scale); 0.01 epsilon lowers it by 40-50% in 3 steps (section 15)
    teacher_step: float = Field(0.01, gt=0, le=1, description="the teacher's step size, a fraction of epsilon")


def build_gradient_aware(epsilon: float = 0.09, *, detector: Any, channels: int = 32, tile: int = 16) -> Any:
    import torch
    import torch.nn.functional as F
    from torch import nn

    from faapkit.plugin_api import DetectorAwareGenerator, pad_to_multiple_of_4

    class GradientAwareGenerator(DetectorAwareGenerator):
        def __init__(self) -> None:
            super().__init__(epsilon, detector=detector, channels=channels, tile=tile)
            self.grad_full = nn.Conv2d(6, 3, 3, 1, 1)
            self.grad_quarter = nn.Conv2d(6, channels, 4, 4)
            for p in (*self.grad_full.parameters(), *self.grad_quarter.parameters()):
                nn.init.zeros_(p)

        def clean_context(self, x: torch.Tensor) -> torch.Tensor:
            """``(B, 6, H', W')``: the two RMS-normalised input gradients of the padded clean image."""
            g_conf, g_unc = _signal_gradients(self.detector, pad_to_multiple_of_4(x))
            grads = torch.cat([g_conf, g_unc], 1)
            rms = grads.flatten(2).pow(2).mean(-1).add(1e-20).rsqrt()  # (B, 6)
            return (grads * rms[..., None, None]).detach()

        def forward(self, x: torch.Tensor, clean_context: torch.Tensor | None = None) -> torch.Tensor:
            h, w = x.shape[-2:]
            grads = self.clean_context(x) if clean_context is None else clean_context
            padded = pad_to_multiple_of_4(x)
            f = F.relu(self.down(F.relu(self.stem(padded))))
            feats = DetectorAwareGenerator.clean_context(self, x)
            f = f + self.project_context(feats, (f.shape[-2], f.shape[-1]))
            f = f + self.grad_quarter(grads)[..., : f.shape[-2], : f.shape[-1]]
            f = F.relu(self.mid1(f))
            f = F.relu(self.mid2(f)) + f
            f = F.relu(self.mid3(f)) + f
            out = F.pixel_shuffle(self.head(f), 4)[..., :h, :w] + self.full(x)
            out = out + self.grad_full(grads)[..., :h, :w]
            t = self.tile.shape[-1]
            out = out + self.tile.repeat(1, 1, -(-h // t), -(-w // t))[..., :h, :w]
            return self.epsilon * torch.tanh(out)

    return GradientAwareGenerator()


@contextmanager
def _detector_at_leaf(detector: Any, image: Any) -> Iterator[tuple[Any, Any]]:
    """``(xi, outputs)``: a leaf copy ``xi`` of ``image (B, 3, H, W)`` that records gradients, and
    the detector's outputs on it (no padding), whatever the caller's grad mode."""
    import torch

    # the caller may run under torch.inference_mode (serving code does), where enable_grad alone
    # records nothing and the gradient fails naming "element 0"; the clone made outside inference
    # mode is a normal tensor autograd can record on
    with torch.inference_mode(False), torch.enable_grad():
        xi = image.detach().clone().requires_grad_(True)
        mask = torch.zeros(xi.shape[0], *xi.shape[-2:], dtype=torch.bool, device=xi.device)
        yield xi, detector(xi, mask)


def _confidence(outputs: dict[str, Any]) -> Any:
    """``(B, Q)``: each query's highest object-class probability ``max_c p(c|q)`` (no-object excluded)."""
    from faapkit.plugin_api import query_confidence

    return query_confidence(outputs["pred_logits"])


def _signal_gradients(detector: Any, image: Any) -> tuple[Any, Any]:
    """Gradients ``(B, 3, H, W)`` of the detector's confidence ``sum_q max_c p(c|q)`` and of its
    last two decoder layers' box disagreement ``sum_q p_q |b_L - b_{L-1}|_1`` at ``image``."""
    import torch

    with _detector_at_leaf(detector, image) as (xi, out):
        prob = _confidence(out)  # (B, Q)
        g_conf = torch.autograd.grad(prob.sum(), xi, retain_graph=True)[0]
        aux = out.get("aux_outputs") or []
        if not aux:
            return g_conf, torch.zeros_like(g_conf)
        unc = (prob.detach().unsqueeze(-1) * (out["pred_boxes"].float() - aux[-1]["pred_boxes"].float()).abs()).sum()
        return g_conf, torch.autograd.grad(unc, xi)[0]


def build_refine(epsilon: float = 0.09, *, detector: Any, channels: int = 32, tile: int = 16, steps: int = 2) -> Any:
    import torch
    from torch import nn

    from faapkit.plugin_api import TransformerAwareGenerator, clamp_normalized

    class RefineGenerator(TransformerAwareGenerator):
        def __init__(self) -> None:
            super().__init__(epsilon, detector=detector, channels=channels, tile=tile)
            self.step_sizes = nn.Parameter(torch.zeros(steps, 2))  # (steps, [confidence, disagreement])

        def forward(self, x: torch.Tensor, clean_context: torch.Tensor | None = None) -> torch.Tensor:
            delta = super().forward(x, clean_context)
            for a_b in self.step_sizes:
                g_conf, g_unc = _signal_gradients(self.detector, clamp_normalized(x + delta))
                step = a_b[0] * g_conf.sign() + a_b[1] * g_unc.sign()
                delta = (delta + self.epsilon * step).clamp(-self.epsilon, self.epsilon)
            return delta

    return RefineGenerator()


def _every_layer_view(model: Any, images: Any) -> tuple[Any, Any, Any]:
    """``images (B, 3, H, W)`` -> the backbone's last features ``(B, C, h, w)``, the encoder's memory
    ``(B, D, h, w)`` and ``(B, 2L, h, w)``: per decoder layer, its cross-attention (mean over heads)
    summed over queries weighted by that layer's confidence ``max_c p(c|q)``, and its plain mean over
    queries, each scaled to mean 1 per image. No gradient; the detector's forward is untouched."""
    import torch

    from faapkit.plugin_api import decoder_attention, query_confidence

    mask = torch.zeros(images.shape[0], *images.shape[-2:], dtype=torch.bool, device=images.device)
    layers = range(len(model.transformer.decoder.layers))
    src, memory, hs, weights = decoder_attention(model, images, mask, layers)
    maps = []
    with torch.no_grad():
        for h_l, w_l in zip(hs, weights, strict=True):
            confidence = query_confidence(model.class_embed(h_l))  # (B, Q)
            for m in ((confidence.unsqueeze(-1) * w_l.float()).sum(1), w_l.float().mean(1)):  # (B, hw)
                maps.append(m / m.mean(-1, keepdim=True).clamp_min(1e-12))
    b, _, h, w = memory.shape
    return src, memory, torch.stack(maps, 1).view(b, len(maps), h, w).to(memory.dtype)


def build_every_layer(epsilon: float = 0.09, *, detector: Any, channels: int = 32, tile: int = 16) -> Any:
    import torch
    from torch import nn

    from faapkit.plugin_api import TransformerAwareGenerator, pad_to_multiple_of_4, rms_per_position

    layers = len(detector.model.transformer.decoder.layers)

    class EveryLayerGenerator(TransformerAwareGenerator):
        def __init__(self) -> None:
            super().__init__(epsilon, detector=detector, channels=channels, tile=tile)
            self.memory_proj = nn.Conv2d(int(detector.transformer_dim) + 2 * layers, channels, 1)
            for param in self.memory_proj.parameters():
                nn.init.zeros_(param)

        def clean_context(self, x: torch.Tensor) -> torch.Tensor:
            features, memory, attended = _every_layer_view(self.detector.model, pad_to_multiple_of_4(x))
            return torch.cat([rms_per_position(features), rms_per_position(memory), attended], 1).to(x.dtype)

    return EveryLayerGenerator()


def disadvantaged_matches(x: Any) -> list[tuple[int, Any, Any]]:
    """``(image, queries (n,), targets (n,))`` of the matches (``x.indices``) to disadvantaged
    boxes, images without one left out. On box-level data an image may hold people of both groups
    (``targets[b]["groups"]``): only its disadvantaged people's boxes count, or the term would pull
    the advantaged people's boxes up too."""
    dis = set(x.index(0).tolist())
    kept = []
    for b, (q, t) in enumerate(x.indices):
        if b not in dis:
            continue
        if x.box_level:
            own = (x.targets[b]["groups"][t] == 0).to(q.device)
            q, t = q[own], t[own]
        if len(q):
            kept.append((b, q, t))
    return kept


class CriticOptions(LevelUpOptions):
    # the critic's term reaches the critic's parameters alone (its inputs are detached), and Adam
    # is blind to a constant factor on one parameter group's gradient: the weight barely matters
    critic_weight: float = Field(1.0, ge=0, description="weight of the critic's BCE against the matched IoU")


def critic_inputs(outputs: dict[str, Any]) -> tuple[Any, Any, Any]:
    """A DETR's outputs -> what the critic reads per query: the last decoder layer's features
    ``(B, Q, D)``, the confidence ``max_c p(c|q)`` over the object classes ``(B, Q)`` and the box
    ``(B, Q, 4)`` (normalised cxcywh), all float."""
    if "features" not in outputs:
        raise RuntimeError("critic-refine needs a DETR whose outputs carry its decoder features")
    return outputs["features"].float(), _confidence(outputs), outputs["pred_boxes"].float()


def query_quality(outputs: dict[str, Any], targets: list[dict[str, Any]], indices: Any) -> Any:
    """The critic's target ``(B, Q)``, no graph: each matched query's IoU of its box with the
    ground-truth box it is matched to (``indices``: one ``(queries, targets)`` pair per image), 0
    for every unmatched query."""
    import torch
    from torchvision.ops import box_convert, box_iou

    boxes = outputs["pred_boxes"].detach().float()
    quality = torch.zeros(boxes.shape[:2], device=boxes.device)
    for b, (q, t) in enumerate(indices):
        if len(q):
            pred = box_convert(boxes[b, q.to(boxes.device)], "cxcywh", "xyxy")
            tgt = box_convert(targets[b]["boxes"][t].float().to(boxes.device), "cxcywh", "xyxy")
            quality[b, q.to(boxes.device)] = torch.diag(box_iou(pred, tgt))
    return quality


def _critic_gradient(detector: Any, critic: Any, image: Any) -> Any:
    """Gradient ``(B, 3, H, W)`` at ``image`` of the confident queries' predicted quality
    ``sum_q p_q sigmoid(critic_q)``, ``p_q = max_c p(c|q)`` detached (it weighs, the critic
    judges), whatever the caller's grad mode."""
    import torch

    with _detector_at_leaf(detector, image) as (xi, out):
        features, confidence, boxes = critic_inputs(out)
        quality = critic(features, confidence, boxes).sigmoid()
        return torch.autograd.grad((confidence.detach() * quality).sum(), xi)[0]


def build_critic_refine(
    epsilon: float = 0.09, *, detector: Any, channels: int = 32, tile: int = 16, steps: int = 1, hidden: int = 64
) -> Any:
    import torch
    from torch import nn

    from faapkit.plugin_api import TransformerAwareGenerator, clamp_normalized

    class QueryCritic(nn.Module):
        """``features (B, Q, D)``, ``confidence (B, Q)``, ``boxes (B, Q, 4)`` -> quality logits ``(B, Q)``."""

        def __init__(self, dim: int) -> None:
            super().__init__()
            self.norm = nn.LayerNorm(dim)
            self.mlp = nn.Sequential(nn.Linear(dim + 5, hidden), nn.ReLU(), nn.Linear(hidden, 1))

        def forward(self, features: torch.Tensor, confidence: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
            z = torch.cat([self.norm(features), confidence.unsqueeze(-1), boxes], -1)
            return self.mlp(z).squeeze(-1)  # type: ignore[no-any-return]

    class CriticRefineGenerator(TransformerAwareGenerator):
        def __init__(self) -> None:
            super().__init__(epsilon, detector=detector, channels=channels, tile=tile)
            self.critic = QueryCritic(int(detector.transformer_dim))
            self.step_sizes = nn.Parameter(torch.zeros(steps))

        def forward(self, x: torch.Tensor, clean_context: torch.Tensor | None = None) -> torch.Tensor:
            delta = super().forward(x, clean_context)
            for a in self.step_sizes:
                g = _critic_gradient(self.detector, self.critic, clamp_normalized(x + delta))
                delta = (delta + self.epsilon * a * g.sign()).clamp(-self.epsilon, self.epsilon)
            return delta

    return CriticRefineGenerator()


def build_hardbox(advantaged_weight: float, keep_weight: float, box_weight: float, gamma: float) -> Any:
    import torch
    from torchvision.ops import box_convert, box_iou, generalized_box_iou

    from faapkit.plugin_api import LevelUpDetection, LossInputs, LossOutput

    class HardBox(LevelUpDetection):
        def __call__(self, x: LossInputs) -> LossOutput:
            base = super().__call__(x)
            l1s, gious, ious = [], [], []
            boxes = x.outputs["pred_boxes"]
            for b, q, t in disadvantaged_matches(x):
                pred = boxes[b, q].float()
                tgt = x.targets[b]["boxes"][t].float()
                pxy, txy = box_convert(pred, "cxcywh", "xyxy"), box_convert(tgt, "cxcywh", "xyxy")
                l1s.append((pred - tgt).abs().sum(-1))
                gious.append(torch.diag(generalized_box_iou(pxy, txy)))
                ious.append(torch.diag(box_iou(pxy, txy)).detach())
            if not l1s:
                return base
            l1, giou, iou = torch.cat(l1s), torch.cat(gious), torch.cat(ious)
            w = (1 - iou).clamp_min(0).pow(gamma)
            w = w / w.mean().clamp_min(1e-6)
            hard = (w * (l1 + 1 - giou)).mean()
            terms = dict(base.terms)
            terms["hard_box"] = hard.detach()
            return LossOutput(base.total + box_weight * hard, terms)

    return HardBox(advantaged_weight=advantaged_weight, keep_weight=keep_weight)


def distill_teacher(x: Any, rows: Any, group: int | None, *, steps: int, step: float) -> tuple[Any, Any]:
    """The teacher of batch rows ``rows (n,)``: ``steps`` signed-gradient steps of ``step * epsilon``
    on their DETR set loss with ground truth (of ``group``'s boxes when given), from the student's
    own ``delta.detach()``, clipped to ``|delta| <= epsilon`` and the valid region. Returns the
    teacher ``(n, 3, H, W)``, a constant (no graph), and its set loss (a detached scalar)."""
    import torch

    from faapkit.plugin_api import clamp_normalized, signed_descent

    images, mask = x.images[rows], x.mask[rows]

    def set_loss(perturbed: Any) -> Any:
        return x.detection_on(perturbed, rows, group)

    start = x.delta[rows]
    teacher = signed_descent(set_loss, images, mask, start, epsilon=x.epsilon, steps=steps, step_size=step * x.epsilon)
    with torch.no_grad():
        loss = set_loss(clamp_normalized(images + teacher) * (~mask).unsqueeze(1).to(images.dtype))
    return teacher, loss


def build_distill(
    advantaged_weight: float, keep_weight: float, distill_weight: float, teacher_steps: int, teacher_step: float
) -> Any:
    from faapkit.plugin_api import LevelUpDetection, LossInputs, LossOutput

    class LevelUpDistill(LevelUpDetection):
        def __call__(self, x: LossInputs) -> LossOutput:
            base = super().__call__(x)
            if x.images is None or x.mask is None or x.detection_on is None or x.delta is None or not x.epsilon:
                raise RuntimeError("level-up-distill needs the engine's clean images, mask, detection_on and delta")
            rows, group = (x.holding(0), 0) if x.box_level else (x.index(0), None)
            if not len(rows):
                return base
            teacher, teacher_loss = distill_teacher(x, rows, group, steps=teacher_steps, step=teacher_step)
            valid = (~x.mask[rows]).unsqueeze(1).float()  # (n, 1, H, W)
            gap = ((x.delta[rows].float() - teacher.float()) / x.epsilon).pow(2) * valid
            distill = (gap.flatten(1).sum(1) / (3 * valid.flatten(1).sum(1)).clamp_min(1)).mean()
            terms = {**base.terms, "distill": distill.detach(), "loss_det_dis_teacher": teacher_loss}
            return LossOutput(base.total + distill_weight * distill, terms)

    return LevelUpDistill(advantaged_weight=advantaged_weight, keep_weight=keep_weight)


def build_critic_loss(advantaged_weight: float, keep_weight: float, critic_weight: float) -> Any:
    import torch.nn.functional as F

    from faapkit.plugin_api import LevelUpDetection, LossInputs, LossOutput

    class LevelUpCritic(LevelUpDetection):
        def __call__(self, x: LossInputs) -> LossOutput:
            base = super().__call__(x)
            critic = getattr(x.generator, "critic", None)
            if critic is None:
                raise RuntimeError("level-up-critic trains the critic of generator critic-refine; this run has none")
            quality = query_quality(x.outputs, x.targets, x.indices)
            features, confidence, boxes = (t.detach() for t in critic_inputs(x.outputs))
            logits = critic(features, confidence, boxes).float()
            bce = F.binary_cross_entropy_with_logits(logits, quality)
            error = (logits.detach().sigmoid() - quality).abs()
            matched = quality > 0
            terms = {
                **base.terms,
                "critic_bce": bce.detach(),
                "critic_mae": error.mean(),
                "critic_mae_matched": error[matched].mean() if matched.any() else error.new_zeros(()),
            }
            return LossOutput(base.total + critic_weight * bce, terms)

    return LevelUpCritic(advantaged_weight=advantaged_weight, keep_weight=keep_weight)


@hookimpl
def faap_register_generators(register: Callable[[GeneratorSpec], None]) -> None:
    register(
        GeneratorSpec(
            name="gradient-aware",
            factory=build_gradient_aware,
            options=GradOptions,
            uses_detector=True,
            description="detector-aware + input gradients of the detector's confidence and box disagreement",
        )
    )
    register(
        GeneratorSpec(
            name="refine-steps",
            factory=build_refine,
            options=RefineOptions,
            uses_detector=True,
            description="transformer-aware + learned signed-gradient steps on the detector's confidence, disagreement",
        )
    )
    register(
        GeneratorSpec(
            name="critic-refine",
            factory=build_critic_refine,
            options=CriticRefineOptions,
            uses_detector=True,
            description="transformer-aware + learned signed-gradient steps up a learned critic's box quality",
        )
    )
    register(
        GeneratorSpec(
            name="every-layer-aware",
            factory=build_every_layer,
            options=GradOptions,
            uses_detector=True,
            description="transformer-aware with every decoder layer's attention, confidence-weighted and plain",
        )
    )


@hookimpl
def faap_register_schedules(register: Callable[[ScheduleSpec], None]) -> None:
    register(
        ScheduleSpec(
            name="cosine_restarts",
            factory=cosine_restarts,
            kind="lr",
            options=RestartOptions,
            description="lr factor: warmup, then cosine cycles that restart (SGDR)",
        )
    )


@hookimpl
def faap_register_losses(register: Callable[[LossSpec], None]) -> None:
    register(
        LossSpec(
            name="level_up_hardbox",
            factory=build_hardbox,
            options=HardBoxOptions,
            description="level-up + IoU-weighted box term on the disadvantaged boxes",
        )
    )
    register(
        LossSpec(
            name="level_up_distill",
            factory=build_distill,
            options=DistillOptions,
            description="level-up + distance to a ground-truth teacher (PGD from the student's delta)",
        )
    )
    register(
        LossSpec(
            name="level_up_critic",
            factory=build_critic_loss,
            options=CriticOptions,
            description="level-up + the critic's BCE against each query's matched IoU (trains the critic only)",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="level-up-hardbox",
            extends="level-up",  # its generator, schedules, group levels and defaults
            loss="level_up_hardbox",
            description="level-up + IoU-weighted box term on the disadvantaged boxes",
        )
    )
    register(
        VersionSpec(
            name="level-up-distill",
            extends="level-up",
            loss="level_up_distill",
            description="level-up + distillation from the oracle's per-image deltas on the train images",
        )
    )
    register(
        VersionSpec(
            name="level-up-critic",
            extends="level-up",
            loss="level_up_critic",
            generator="critic-refine",
            description="level-up + test-time steps up a learned, ground-truth-trained critic of box quality",
        )
    )
