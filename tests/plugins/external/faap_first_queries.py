"""A third-party plugin used by the tests (put on ``PYTHONPATH`` with a ``.dist-info`` naming it in
the ``faap`` entry-point group): a detector built by its own factory, the shipped tiny DETR behind
a wrapper that keeps only its first ``keep`` queries. Registering it imports no torch."""

from collections.abc import Callable

from faapkit.plugin_api import DetectorSpec, hookimpl

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
