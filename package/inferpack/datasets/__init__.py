"""Datasets: the customer's images (and labels) in the formats the reference systems use.

``items`` holds what a dataset is once read (images, truth, problems found on the way);
``readers`` reads the four layouts (YOLO ``property.json`` + ``data/``, a folder per class,
COCO detection JSON, a plain folder of images); ``validate`` checks every image with the
server's own decoder and limits; ``store`` keeps datasets in a service's data folder.
"""
