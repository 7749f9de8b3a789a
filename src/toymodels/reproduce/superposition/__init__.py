"""TODO floor docstring: reproduce/superposition."""
