"""Experiment tools on top of the engines: sweeps, tables, plots, reports, calibration
and benchmarks."""
