"""Evaluation measures on labelled data, and the reports a person accepting a model reads.

``classification``: accuracy, top-k, per-class precision/recall/F1, macro/micro F1, MCC,
confusion matrix (as scikit-learn computes them). ``detection``: COCO's evaluation (as
pycocotools computes it): AP per class, mAP@0.5, mAP@[.5:.95] with 101-point interpolation
and area ranges, precision/recall at a score threshold, PR curves. ``report`` writes
report.json and a self-contained report.html.
"""
