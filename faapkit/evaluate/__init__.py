"""Evaluation: batched inference to COCO records, per-group COCO scoring with paired bootstrap
CIs, saved detections for rescoring, ``faap eval``'s evaluator and the headroom probe."""
