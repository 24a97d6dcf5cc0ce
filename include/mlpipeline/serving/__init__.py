"""The prediction API."""
