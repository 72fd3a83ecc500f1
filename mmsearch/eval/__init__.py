"""Measuring search quality on judged queries: metrics, judged-file readers, the evaluation runner."""
