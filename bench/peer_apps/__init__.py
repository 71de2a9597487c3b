"""Peer servers for ``bench.peers``: the same ONNX model behind other Python serving stacks.

These modules run in the peers' own virtual environment (``bench/peers.py --peers-venv``),
never in inferpack's: they import litserve/mosec, and only the standard library, numpy,
OpenCV and onnxruntime besides.
"""
