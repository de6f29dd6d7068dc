"""The training engine: the trainer and what only training needs (colour jitter, schedules,
meters, loggers, validation and checkpoint selection), and the pretraining of the shipped detector."""
