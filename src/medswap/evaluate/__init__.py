"""Measuring what de-identification keeps: keypoint invariance, statistics, comparisons."""
