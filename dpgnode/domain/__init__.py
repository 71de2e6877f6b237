"""Pure domain logic: no I/O, no clocks, no randomness, no frameworks."""
