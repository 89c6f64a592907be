"""The fitting engine: config, target tensors, parameters, losses, optimiser, the staged loop."""
