"""Floor 4, plotting: the one way to make and write a figure (``save``: pyplot-free, atomic), what every figure
shares (``common``: the colour scale, diverged styling, chosen instances) and what the dashboard's interactive
figures share (``interactive``: plotly, the optional ``app`` extra; imported only by the dashboard's modules).
Families draw their own figures, and their dashboard panels, with it; it knows no family.
"""
