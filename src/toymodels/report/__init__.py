"""Floor 7, report: what a finished results folder shows, for any family.

``figures`` (the generic figures plus the family's own, ``figure_specs`` / ``all_plots``), ``training`` and
``swept`` (the two generic figures), ``html`` (``report.html`` and the summary table), ``columns`` (which config
fields a folder shows, what each summary column is), ``parts`` and ``study`` (a multi-part preset's folder as one
study: its parts found and tabulated together, its own ``report.html``).
"""
