"""Hardware fingerprint, signed license files, offline verification and the clock guard."""
