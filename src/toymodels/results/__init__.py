"""Floor 3, results: the results folder and the tables read from it.

``store`` (atomic writes, safe loading that never unpickles, ``Results``, ``ResultsError``), ``files`` (no write
ever goes through a link), ``checkpoint_stream`` (a group's checkpoints written to disk as they are taken) and
``tables`` (seed aggregation, settings, number formatting).
"""
