"""Serving: the prediction API, its request parsing and scoring, the served models, the prediction log."""
