"""Kubernetes manifests for a deploy package (``install.py export kubernetes``)."""
