"""Run under torchrun by test_ddp.py: train a few steps with DDP, then dump each rank's generator."""

import os
import sys
from pathlib import Path

import torch

from faapkit.config import resolve_config
from faapkit.distributed import shutdown
from faapkit.plugins import make_plugin_manager
from faapkit.plugins.registry import Registries
from faapkit.train.trainer import Trainer

out = Path(sys.argv[1])
version = sys.argv[2]
reg = Registries.from_plugin_manager(make_plugin_manager())
cfg = resolve_config(
    reg,
    version=version,
    overrides=[
        "train.batch_size=4",
        "data.limit_images=40",
        "train.epochs=1",
        "train.steps_per_epoch=3",
        "train.device='cpu'",
        "train.log_every=1",
        "train.val_limit_images=8",  # rank 0 validates at the end: run, not measured
        # padded batches (this detector's training): 40 images bucketed by size leave batches without
        # the two groups the 4th needs, and every step would be skipped
        "detector.name=detr-synth-tiny",
    ],
)
trainer = Trainer(cfg, reg, out / "run")
trainer.setup()
rank = trainer.dist.rank
init = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
means: dict[str, float] = {}
end_epoch = trainer._end_epoch


def _keep_means(*args):  # this rank's own epoch means, before the epoch's meters are reset
    means.update(trainer.state.meters.means())
    return end_epoch(*args)


trainer._end_epoch = _keep_means
trainer.fit()
torch.save(
    {
        "init": init,
        "final": trainer.generator.state_dict(),
        "world": trainer.dist.world_size,
        "pid": os.getpid(),
        "means": means,
    },
    out / f"rank{rank}.pt",
)
shutdown(trainer.dist)
