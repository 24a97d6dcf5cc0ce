"""Deployment: serving an approved model (verified, rolled back on failure), A/B tests, simulated traffic."""
