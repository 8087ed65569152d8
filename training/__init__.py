"""Training of sparse encoders: losses, sparsity regularizers, teachers, negatives, the trainer.

Five lines from a config to a trained, evaluated model::

    from training import load_config, train
    cfg = load_config("inference-free-idf")          # a shipped recipe, or a path to a JSON/YAML file
    result = train(cfg)                              # resumes from output_dir's latest checkpoint
    print(result.model_dir, result.evaluations[-1])  # an lsr encoder directory

or ``lsr train CONFIG``. Modules: :mod:`training.losses` (contrastive, Margin-MSE, KL, teacher
ensembles, the composed ``SparseLoss``), :mod:`training.regularizers` (FLOPS, L1, l0 mask, DF-FLOPS as
regularizer objects with warm-up and sparsity controller), :mod:`training.model` (the model under
training; its math is :mod:`lsr.encoders.projection`, shared with serving), :mod:`training.teachers`,
:mod:`training.data`, :mod:`training.config`, :mod:`training.trainer`, :mod:`training.ship` (a trained
model into the package).
This package may import ``lsr``, ``index``, ``eval``, torch and faiss; nothing else in lsr imports
it (the CLI only lazily).
"""

from .config import ConfigError, TrainConfig, config_from_dict, list_recipes, load_config
from .trainer import Trainer, TrainResult, train

__all__ = ["ConfigError", "TrainConfig", "Trainer", "TrainResult", "config_from_dict", "list_recipes",
           "load_config", "train"]
