"""Core: the settings, the problem contract and the small helpers every layer may use. Imports nothing above it."""
