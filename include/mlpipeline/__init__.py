"""Generic ML pipeline machinery: nothing in here knows the example problem."""
