"""Visitor classification: people, link-preview bots, mail scanners, crawlers and tools."""

from .classifier import Classifier, Visitor, VisitorKind, classify, default_classifier

__all__ = ["Classifier", "Visitor", "VisitorKind", "classify", "default_classifier"]
