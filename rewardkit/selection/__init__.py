"""Preference pairs as vectors: pair embeddings, data selection and label audits.

- `embeddings.py`  one vector per pair from a judge or a Bradley–Terry model (antisymmetric:
                   swapping the responses negates it), saved as Parquet with the model named
- `strategies.py`  choosing pool pairs for a target domain: optimal transport (RoVRM, 2024),
                   nearest neighbours, largest margin, random
- `audit.py`       pairs where a confident model disagrees with the label, for a person to review
- `report.py`      how a selection spreads over the pool's sources and subsets, and a 2-D map
The LRHP idea (Learning Representations for Human Preferences, 2025) — representations for
selection and margin prediction — is what these build on.
"""
