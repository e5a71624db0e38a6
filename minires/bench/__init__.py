"""Benchmarks: every op and the seed's model, timed against PyTorch in the same run.

``minires bench kernels | train | compile | all`` (see ``minires.bench.report``).
"""
