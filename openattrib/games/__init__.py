"""Cooperative games: how a coalition of players is scored.

:class:`Game` is the protocol every estimator uses (:mod:`openattrib.games.base`);
:class:`ModelUtility` is the game of data valuation (:mod:`openattrib.games.utility`).
Toy games with closed-form values live in :mod:`openattrib.toy_games`.
"""

from .base import FunctionGame, Game, check_masks
from .utility import ModelUtility

__all__ = ["FunctionGame", "Game", "ModelUtility", "check_masks"]
