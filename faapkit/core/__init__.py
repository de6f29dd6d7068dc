"""Torch-side building blocks: generator, heads, schedules, losses, engine, evaluation."""
