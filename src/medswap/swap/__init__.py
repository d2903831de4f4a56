"""Replacing or hiding faces: the mesh swap, its blending, donors, and the baselines."""
