"""Data: the lake, source files, quality gates, the ETL and feature steps, DVC data versions."""
