"""Floor 4, plotting: the one way to make and write a figure (``save``: pyplot-free, atomic) and what every figure
shares (``common``: the colour scale, diverged styling, chosen instances). Families draw their own figures with it;
it knows no family.
"""
