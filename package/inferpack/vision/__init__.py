"""Image decoding and validation, preprocessing, and classification/detection postprocessing."""
