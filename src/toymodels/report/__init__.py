"""Floor 7, report: what a finished results folder shows, for any family.

``figures`` (the generic figures plus the family's own, ``figure_specs`` / ``all_plots``), ``training`` and
``swept`` (the two generic figures), ``html`` (``report.html`` and the summary table).
"""
