"""Analysis: diagnosis, sizing, history and the host plan."""

from xenaudit.analysis.default import DefaultAnalyzer

__all__ = ["DefaultAnalyzer"]
