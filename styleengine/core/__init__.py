"""The shared core every stage builds on, and which imports no stage: errors, atomic files, the logger and
progress hooks, paths, shapes and profiles, host facts, the transformation network and its checkpoints, the
loss networks, the bundle format and TensorRT plan sidecars.

Stages: the CLI uses the engine, the engine uses export (only through engine.loaders), export uses the core,
and train uses the core. Modules that need torch (network, checkpoint, loss_networks) import it at the top, so
only torch-using code imports them.
"""

__version__ = "0.1.0"
