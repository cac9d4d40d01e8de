"""Per-inference data attribution: influence functions, TracIn and TRAK.

* :func:`influence` - influence functions (Koh & Liang 2017) of fitted scikit-learn linear
  models with closed-form gradients and Hessians, solved directly, by CG or by LiSSA.
* :func:`attribute_prediction` - the contributors behind one prediction, with the Hessian
  factorisation cached per ``(model, train)`` so it can be called per request.
* :func:`explain_prediction` - SHAP feature attributions and the training data behind one
  prediction, side by side.
* :func:`tracin` and :func:`trak` - TracIn (Pruthi et al. 2020) and TRAK (Park et al. 2023)
  for small ``torch.nn.Module`` classifiers (needs the ``openattrib[torch]`` extra).
* :func:`lds` - the linear datamodeling score (Park et al. 2023) of any attribution.
* ``influence(torch_module, ...)`` - EK-FAC, DataInf, TracIn, TRAK and gradient dot products
  on any ``torch.nn.Module`` (``transformers`` models, ``peft`` LoRA adapters), with the
  training side cached (:class:`NeuralInfluence`, :func:`attribute_generation`);
  :mod:`openattrib.influence.neural_eval` evaluates them by retraining.

Sign convention: **positive = the training point helps the test prediction** (removing it
would increase the test loss).
"""

from __future__ import annotations

from .api import attribute_prediction, influence
from .explain import PredictionExplanation, explain_prediction
from .lds import LDSResult, lds, retrained_outputs, subset_masks
from .neural import NeuralInfluence, attribute_generation, trak
from .prepared import clear_cache
from .result import InfluenceResult
from .tracin import tracin

__all__ = [
    "InfluenceResult",
    "LDSResult",
    "NeuralInfluence",
    "PredictionExplanation",
    "attribute_generation",
    "attribute_prediction",
    "clear_cache",
    "explain_prediction",
    "influence",
    "lds",
    "retrained_outputs",
    "subset_masks",
    "tracin",
    "trak",
]
