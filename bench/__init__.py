"""Benchmarks (not tests): inferpack against raw ONNX Runtime and other Python serving stacks."""
