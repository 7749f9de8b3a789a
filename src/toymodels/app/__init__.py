"""Streamlit dashboard over a folder of results folders: ``toymodels app runs/``.

Run it with the CLI (``toymodels app [DIR]``) or directly::

    streamlit run src/toymodels/app/main.py -- runs/

What it shows, for the sweep picked in the sidebar (the first one when the page opens):

* the sweep's config and its instance table (sortable by clicking a column; filtered by swept values and status;
  clicking a row selects that instance);
* the training plot (the model family's training curves against the step on a log2 axis, one line per instance
  coloured by the swept value) and its final metrics against the swept value (the family's ``presentation``);
* one instance (the first when the page opens) in the panel its model family brings (its ``dashboard_panel`` hook,
  a :class:`toymodels.families.base.DashboardPanel`; none for a family without one): an instance picker, a
  checkpoint slider, and the family's figures and tables of that instance at that step (e.g. single-feature
  activations and the neuron mechanism for a model with neurons, the dictionary against the true features and MCC
  against L0 for SAEs);
* two sweeps side by side (e.g. LR1 against LR3) with their config differences;
* a multi-part preset's folder (``toymodels run OPT1``) as one entry: its parts together (every setting in one
  table, the final metrics part by part, the family's figures of the whole sweep over every part), or one part.

Results are read only through ``toymodels.results.store.load`` and cached per folder and file modification times, so a large
sweep is read once and a sweep that is still running (fewer instances than the sweep has) is re-read when its files
change; its page shows a notice and checks for new results every few seconds. A damaged folder, or one written by
another results-format version, shows the loader's message (which names the file) instead of a traceback.

Modules: ``data`` (finding and reading folders, tables, where a panel's parts go; no streamlit or plotly),
``figures`` (plotly sweep figures), ``widgets`` and ``panel`` (the instance picker and any family's panel,
streamlit), ``study`` (a multi-part preset's page, streamlit), ``main`` (the streamlit page, ``SCRIPT``). Nothing
here knows a family: each brings its own panel.
Importing this package imports neither streamlit nor plotly: they are the optional ``app`` extra.
"""

from __future__ import annotations

from pathlib import Path

#: the script ``streamlit run`` executes
SCRIPT = Path(__file__).with_name("main.py")
