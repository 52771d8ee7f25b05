"""The handbook's 15 model features: one implementation for training, batch scoring and serving."""

from .transform import FEATURE_NAMES, build_features

__all__ = ["FEATURE_NAMES", "build_features"]
