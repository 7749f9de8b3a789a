"""``python -m toymodels ...`` is the ``toymodels`` command."""

from toymodels.cli import main

if __name__ == "__main__":
    main()
