"""Group-labelled COCO datasets, transforms, balanced sampling and the embedded synthetic benchmark."""
