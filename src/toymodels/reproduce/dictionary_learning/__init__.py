"""TODO floor docstring: reproduce/dictionary_learning."""
