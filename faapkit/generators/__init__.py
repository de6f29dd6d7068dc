"""Perturbation generators (the research U-Net, the sub-pixel generator), how their output is
applied to normalised images, and the image grids that show it."""
