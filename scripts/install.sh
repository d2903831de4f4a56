#!/usr/bin/env bash
# Create .venv and install medswap with its pinned models, offline except for PyPI.
# Every model ships either inside a pinned dependency (MediaPipe, dlib's models) or inside
# medswap itself (YuNet, SFace, the face landmarker: src/medswap/data/models/LICENSES.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/python -m pip check
.venv/bin/python -c "import cv2, dlib, mediapipe, medswap; cv2.FaceRecognizerSF; \
print('medswap', medswap.__version__, '| opencv', cv2.__version__, '| mediapipe', mediapipe.__version__)"
