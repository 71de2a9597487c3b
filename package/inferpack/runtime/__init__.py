"""Inference engines behind one small interface, and the dynamic batcher."""
