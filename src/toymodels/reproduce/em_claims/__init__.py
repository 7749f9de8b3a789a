"""TODO floor docstring: reproduce/em_claims."""
