"""Batch jobs over a dataset on the served model: ``predict`` (every image -> results) and
``evaluate`` (predict, then compare with the labels -> measures and a report).

``records`` is a job's description and state; ``results`` its crash-safe JSON Lines log;
``store`` keeps jobs in the service's data folder; ``runner`` runs them inside the server at
background priority and resumes them after a restart; ``scoring`` turns results into
measures and reports; ``exports`` into YOLO, Pascal VOC, COCO and CSV/JSON Lines files.
"""
