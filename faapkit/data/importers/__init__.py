"""Importers of fairness datasets as their authors release them, into faapkit's attributes layout
with box-level groups (:mod:`faapkit.data.box_groups`): ``OUT/annotations/instances_{split}.json``
beside ``OUT/images/{split}``, each person's box carrying its groups in
``annotations[i]["attributes"]``.

One module per release: FACET's ``annotations.csv`` (:mod:`.facet`), the COCO 2014 person-level
skin colour and gender annotations of Zhao et al. (ICCV 2021) joined onto COCO's own
``instances_val2014.json`` (:mod:`.coco_person`). What they share (a row's place in its CSV, image
sizes from file headers, the written layout) is :mod:`.common`. docs/data.md says what was checked
of each release and how each column becomes a group.
"""
