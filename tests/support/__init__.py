"""Helpers shared by the test layers (unit, integration, e2e): real packages, keys, licenses."""
