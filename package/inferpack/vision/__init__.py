"""Image decoding and validation, preprocessing, and classification/detection postprocessing.

Request path: ``decode_base64_image`` -> ``decode_image`` -> ``Preprocessor`` -> engine ->
``classify`` / ``detect``, whose boxes the preprocessor's ``Transform`` maps back to the
original image's pixels.

OpenCV's decode caps (4096 px a side) are set in ``inferpack/__init__.py``, before cv2 can load.
"""
