"""DETR (facebookresearch/detr architecture) re-written for faapkit.

Module and parameter names follow upstream so that its checkpoints (``detr-r50-e632da11.pth``)
load strictly by key; Hugging Face ``DetrForObjectDetection`` weights are renamed onto them
(:mod:`faapkit.detr.hf`). Shapes: B images, Q queries, C classes (+1 no-object), D = hidden_dim.
"""
