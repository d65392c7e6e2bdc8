"""Shared machinery of locate-then-edit editors (MEMIT, AlphaEdit, JEEP).

- `modules`: where the MLP output projections and decoder layers are, and hooks on them;
- `rows`: atomic facts turned into token rows with the subject-last and prediction positions;
- `corpus` and `stats`: the text corpus and the cached key second-moment statistics;
- `vstar`: the target hidden vectors (v*) found by gradient descent on residual deltas;
- `update`: the closed-form weight updates spread over a range of layers;
- `config`: the settings every locate-then-edit editor shares.
"""
