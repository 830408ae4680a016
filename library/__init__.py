"""What every family shares: the one training loop and its data, optimizers and checkpoints.

Importing this package is cheap and never imports TensorFlow; submodules are imported where
they are used.
"""
