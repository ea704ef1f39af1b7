"""Deprecated alias of :mod:`cfnsr.predict.detector_gap` (the gap between detector and landmark face crops).

``python -m cfnsr.predict.crop_gap ...`` still runs it, with a warning naming the new module.
"""

from __future__ import annotations

import sys
import warnings

from cfnsr.predict.detector_gap import detector_gap as crop_gap
from cfnsr.predict.detector_gap import format_detector_gap as format_crop_gap
from cfnsr.predict.detector_gap import main

__all__ = ["crop_gap", "format_crop_gap", "main"]

warnings.warn("cfnsr.predict.crop_gap is deprecated, use cfnsr.predict.detector_gap (python -m "
              "cfnsr.predict.detector_gap; functions detector_gap, format_detector_gap)", FutureWarning, stacklevel=2)

if __name__ == "__main__":
    sys.exit(main())
