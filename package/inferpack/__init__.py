"""inferpack: an offline, packaged inference appliance with an EasyDL-compatible HTTP API."""

import os as _os

__version__ = "0.1.0"

# OpenCV reads these once, when cv2 is first loaded, so they are set before any inferpack module
# can import it. The caps are a second line of defence behind vision.decode.check_header (4096 px
# a side); the log level keeps hostile images from flooding the log with OpenCV's own lines (our
# code reports every decode failure itself). An operator's explicit value wins.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_WIDTH", "4096")
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_HEIGHT", "4096")
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(4096 * 4096))
_os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")
