"""What every public port does with what clients send: bounded bodies, EasyDL protocol errors."""
