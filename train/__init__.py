"""Training stage: the transformation network, loss networks, trainer and checkpoint format (needs torch)."""
