"""Side-by-side benchmarks: ours against the MONAI/TorchIO baseline, in one process, reported as ratios."""
