"""Workflows built on the core: product catalogs, moderation, mood search and boards, OCR, export.

Each module takes the service (or the library and encoders) it works on and builds none of them, so
tests pass tiny models and temporary libraries.
"""
