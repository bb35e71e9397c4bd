"""Visitor classification: people, link-preview bots, mail scanners, crawlers and tools."""

from .classifier import Classifier, Visitor, VisitorKind, classify, default_classifier
from .headers import clean_header

__all__ = [
    "Classifier",
    "Visitor",
    "VisitorKind",
    "classify",
    "clean_header",
    "default_classifier",
]
