"""Burned-in text (date stamps, title cards, record numbers): find it, follow it, redact it.

A camera's date and time stamp or a title card with the patient's name is an identifier that
face de-identification leaves in every frame. This package finds lines of text with PP-OCRv4
(:mod:`.models`), follows them over time so that a stamp whose digits change stays covered
(:mod:`.track`), optionally reads them to keep text that is not PHI (:mod:`.phi`), redacts
(:mod:`.redact`) inside ``deidentify`` (:mod:`.stage`) and checks the output (:mod:`.audit`).
"""

from medswap.text.models import TextDetector, TextRecogniser
from medswap.text.redact import TEXT_METHODS, redact
from medswap.text.regions import TextBoxes, TextReading, TextReason, TextRegion
from medswap.text.stage import TEXT_MODES, TextFrame, TextStage, key_frame_stride

__all__ = [
    "TEXT_METHODS",
    "TEXT_MODES",
    "TextBoxes",
    "TextDetector",
    "TextFrame",
    "TextReading",
    "TextReason",
    "TextRecogniser",
    "TextRegion",
    "TextStage",
    "key_frame_stride",
    "redact",
]
