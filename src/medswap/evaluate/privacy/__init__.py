"""Privacy audit: can the patient still be recognised in a de-identified video?

A de-identified video is only shareable if nobody, human or machine, can tell who the patient
is. This module measures that with face models the swap does not use
(:mod:`medswap.faces.independent`): two detectors (OpenCV-zoo YuNet and dlib's HOG) and two
recognisers (dlib's ResNet descriptor and SFace), each at its published operating point.

Both recognisers are reported as a *distance*, lower meaning more alike, so that one rule
reads for both: "same person" when the distance is below the threshold. dlib's is the
Euclidean distance (same person below 0.6); SFace's is the cosine distance ``1 - cosine``
(same person below ``1 - 0.363 = 0.637``).

The audit answers four questions:

- **Verification**: frame by frame, is the output face judged the same person as the original
  face in the same frame? (``reid_rate`` per recogniser, with the distribution.)
- **Identification**: with the patient enrolled in a gallery of other people, is the patient
  the best (rank-1) or a top-5 match for the output faces? Reported against chance.
- **Leak audit**: every face either detector finds in *any* output frame, also frames where
  the pipeline saw no face, is compared with the patient. Every match is listed.
- **Donor dominance**: how close the output faces are to the donor, so a reader sees the face
  became someone else and not an average blur.

The work is one streaming pass over both videos; everything after it is pure numpy over the
descriptors collected, so the judgement can be re-run without re-detecting.

The package, by job (each name below is importable from ``medswap.evaluate.privacy``):

- :mod:`.recognisers`: the detectors and recognisers, distances, the same-person rule.
- :mod:`.gallery`: the people the patient is hidden among, and the donors.
- :mod:`.scanning`: the pass over both videos and the patient's enrolment.
- :mod:`.judge`: the verdict from the descriptors (leaks, verification, lineup, donors).
- :mod:`.lineup`: the release gate's bar on the lineup's rank-1 rate.
- :mod:`.result`: :class:`AuditResult` and AUDIT.json.
- :mod:`.auditing`: :func:`audit`, the entry point.
- :mod:`.section`: the report's privacy table.
"""

from __future__ import annotations

from medswap.evaluate.privacy.auditing import (
    audit,
    fill_result,
)
from medswap.evaluate.privacy.gallery import (
    _GALLERY_CACHE,
    IMAGE_SUFFIXES,
    PACKAGED_GALLERY,
    Gallery,
    GalleryIdentity,
    _identity,
    builtin_donor_images,
    default_gallery,
    load_donors,
    load_gallery,
)
from medswap.evaluate.privacy.judge import (
    Judge,
    donor_dominance,
    find_leaks,
    identify,
    leaks_in,
    matched_output,
    verify,
)
from medswap.evaluate.privacy.lineup import (
    CHANCE_P_MIN,
    RANK1_MAX,
    chance_tail,
    rank1_bound,
    rank1_passes,
)
from medswap.evaluate.privacy.recognisers import (
    METRICS,
    RECOGNISERS,
    THRESHOLDS,
    FaceAnalyser,
    FaceRecord,
    SFaceRecogniser,
    _hog_like_box,
    describe_still,
    distance,
    mean_descriptor,
    merge_detections,
    overlap,
    prepare_still,
    read_image,
    same_person,
)
from medswap.evaluate.privacy.result import (
    HIST_EDGES,
    AuditResult,
    LeakHit,
    distribution,
)
from medswap.evaluate.privacy.scanning import (
    SFACE_SUSPECT_DISTANCE,
    FrameScan,
    OriginalFaces,
    _patient_face,
    check_alignment,
    enrol,
    paired_frames,
    scan,
    scan_original,
    scan_parallel,
)
from medswap.evaluate.privacy.section import (
    privacy_section,
)

# The private names are here because other modules (the in-stream audit, benchmarks,
# tests) use them; _GALLERY_CACHE is the one dict of gallery.py, shared, not a copy.
__all__ = [
    "CHANCE_P_MIN",
    "HIST_EDGES",
    "IMAGE_SUFFIXES",
    "METRICS",
    "PACKAGED_GALLERY",
    "RANK1_MAX",
    "RECOGNISERS",
    "SFACE_SUSPECT_DISTANCE",
    "THRESHOLDS",
    "_GALLERY_CACHE",
    "AuditResult",
    "FaceAnalyser",
    "FaceRecord",
    "FrameScan",
    "Gallery",
    "GalleryIdentity",
    "Judge",
    "LeakHit",
    "OriginalFaces",
    "SFaceRecogniser",
    "_hog_like_box",
    "_identity",
    "_patient_face",
    "audit",
    "builtin_donor_images",
    "chance_tail",
    "check_alignment",
    "default_gallery",
    "describe_still",
    "distance",
    "distribution",
    "donor_dominance",
    "enrol",
    "fill_result",
    "find_leaks",
    "identify",
    "leaks_in",
    "load_donors",
    "load_gallery",
    "matched_output",
    "mean_descriptor",
    "merge_detections",
    "overlap",
    "paired_frames",
    "prepare_still",
    "privacy_section",
    "rank1_bound",
    "rank1_passes",
    "read_image",
    "same_person",
    "scan",
    "scan_original",
    "scan_parallel",
    "verify",
]
