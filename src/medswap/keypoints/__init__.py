"""Whole-body keypoints: layouts as data, extraction from video, and file formats."""

from medswap.keypoints.extract import extract_keypoints, iter_keypoints
from medswap.keypoints.io import load_keypoints, save_keypoints
from medswap.keypoints.openpose import read_openpose_json, write_openpose_json
from medswap.keypoints.schema import LAYOUTS, Layout

__all__ = [
    "LAYOUTS",
    "Layout",
    "extract_keypoints",
    "iter_keypoints",
    "load_keypoints",
    "read_openpose_json",
    "save_keypoints",
    "write_openpose_json",
]
