"""A third-party plugin used by the tests (put on ``PYTHONPATH`` with a ``.dist-info`` naming it in
the ``faap`` entry-point group): a detector built by its own factory, the shipped tiny DETR behind
a wrapper that keeps only its first ``keep`` queries, and a version using it, also called ``f8``.
Registering it imports no torch."""

from collections.abc import Callable

from faapkit.plugin_api import DetectorSpec, VersionSpec, hookimpl

# the architecture of the built-in detr-synth-tiny, so that its weights fit the wrapped DETR
TINY_ARCH = {
    "backbone": "tinyconv",
    "hidden_dim": 128,
    "nheads": 4,
    "enc_layers": 2,
    "dec_layers": 2,
    "dim_feedforward": 256,
    "num_queries": 16,
    "num_classes": 2,
    "dilation": False,
}


@hookimpl
def faap_register_detectors(register: Callable[[DetectorSpec], None]) -> None:
    register(
        DetectorSpec(
            name="detr-first8",
            factory="faap_first_queries_model:first_queries",
            arch={**TINY_ARCH, "keep": 8},
            description="the tiny DETR's first 8 queries (test plugin)",
        )
    )


@hookimpl
def faap_register_versions(register: Callable[[VersionSpec], None]) -> None:
    register(
        VersionSpec(
            name="level-up-first8",
            aliases=("f8",),
            loss="level_up_detection",
            head=None,
            generator="subpixel",
            schedules={"epsilon": "constant", "lr": "constant"},
            defaults={
                "detector": {"name": "detr-first8"},
                "schedules": {"epsilon": {"name": "constant", "value": 0.09}, "lr": {"name": "constant", "value": 1.0}},
                "train": {"lr": 1e-2, "val_every": 0, "batch_size": 4},
            },
            description="level-up's loss against the first-8-queries detector (test plugin)",
        )
    )
