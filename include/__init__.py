"""Project code shared by the DAGs, the API, DVC stages and tests (Astro convention: `include/`)."""
