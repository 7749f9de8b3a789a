"""TODO floor docstring: reproduce/optimizer."""
