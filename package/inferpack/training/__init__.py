"""Training image classifiers and detectors into inferpack bundles (the optional ``[train]`` extra).

PyTorch + torchvision, imported only here: the server and the operator's installer never load
this package. ``trainer.Trainer`` runs one resumable run in a model folder; ``python -m
inferpack.training RUN_DIR`` runs it as its own process (what the workbench starts and kills).
"""
