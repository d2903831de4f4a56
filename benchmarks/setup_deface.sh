#!/usr/bin/env bash
# deface 1.5.0, the anchor of bench_deidentify.py, in its own venv: its undeclared onnx
# dependency must be 1.22 (1.23 pulls protobuf 7, which breaks mediapipe 0.10.21).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .bench/deface-venv
.bench/deface-venv/bin/python -m pip install -q --upgrade pip
.bench/deface-venv/bin/python -m pip install -q "deface==1.5.0" "onnx==1.22.0" onnxruntime
.bench/deface-venv/bin/deface --help >/dev/null && echo "deface ready: .bench/deface-venv/bin/deface"
