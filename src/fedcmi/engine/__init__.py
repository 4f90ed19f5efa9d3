"""The embedded engine and what runs need around it: the federation, the round (written
once for every runner), evaluation, the run folder, checkpoints, faults and speed
settings. The Flower adapter calls the same functions."""
