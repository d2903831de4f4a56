"""Release review: a page where a person checks every flagged frame, and a signed release.

``medswap review`` builds the page (:mod:`.page`) from a run's outputs (:mod:`.load`,
:mod:`.frames`), optionally serving it (:mod:`.server`); a decision becomes a signed release
manifest (:mod:`.sign`); ``medswap release`` copies only what verifies (:mod:`.release`).
"""

from medswap.review.api import ReviewPage, approve, build_review_page
from medswap.review.load import load_review_set
from medswap.review.release import release
from medswap.review.sign import Decision, verify_manifest

__all__ = [
    "Decision",
    "ReviewPage",
    "approve",
    "build_review_page",
    "load_review_set",
    "release",
    "verify_manifest",
]
