"""Loss strategies of the method versions, the pieces they share, the engine-loss contract
(``base``) and the trainable heads on decoder features they use (``heads``)."""
