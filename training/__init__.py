"""Training of sparse encoders: losses, sparsity regularizers, teachers, negatives, the trainer.

This package is the training issue's home (ranking and distillation losses; FLOPS, IDF-aware
FLOPS, l0 and L1 regularizers; sparsity targets; ``lsr train CONFIG``). It may import ``lsr``,
``index``, ``eval``, torch and faiss; nothing else in lsr imports it (the CLI only lazily).
"""
