"""Evaluation of de-identified videos: what is kept (keypoints, measures) and what is hidden."""
