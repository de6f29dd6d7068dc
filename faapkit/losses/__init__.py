"""The engine-loss contract (``base``: ``LossInputs``, ``LossOutput``, ``LossStrategy``), the loss
pieces the method versions share (``common``) and the trainable heads on decoder features they use
(``heads``). Each version's own loss is in its plugin package (``plugins/faap_plugins/v*/loss.py``)."""
