"""Multi-Object datasets: the reference .h5 layout, its reader, offline generators and integrity checks."""
