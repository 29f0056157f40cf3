"""Pair embeddings: one vector per (prompt, a, b), from a model's final hidden states.

A judge gives the state at its verdict position with a shown first minus the same with b
first (halved); a Bradley–Terry model gives state(prompt, a) − state(prompt, b). Either way
swapping a and b negates the vector, so "a is better" and "b is better" sit on opposite sides.
Rows come back in input order; the file keeps each pair's id, source and subset and names the
model, so embeddings of different models are never mixed by accident.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rewardkit.errors import ConfigError, DataError
from rewardkit.files import replace_with
from rewardkit.scoring.pair_embeddings import PairEmbeddings, embed_pairs, sides  # noqa: F401  (also imported from here)

MODEL_KEY, KIND_KEY = b"rewardkit.model", b"rewardkit.kind"


def write_embeddings(path: str | Path, embeddings: PairEmbeddings) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"row": list(range(len(embeddings))), "id": [str(i) if i is not None else None for i in embeddings.ids],
                      "source": embeddings.sources, "subset": embeddings.subsets,
                      "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.vectors.reshape(-1)),
                                                                     embeddings.vectors.shape[1])})
    table = table.replace_schema_metadata({MODEL_KEY: embeddings.model.encode(), KIND_KEY: embeddings.kind.encode()})
    replace_with(path, lambda temp: pq.write_table(table, temp))


def read_embeddings(path: str | Path) -> PairEmbeddings:
    import pyarrow.parquet as pq

    if not Path(path).is_file():
        raise DataError(str(path), None, None, "no such file")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow's ArrowInvalid / OSError for anything that is not Parquet
        raise DataError(str(path), None, None, f"not a Parquet file written by `rewardkit embed` "
                                               f"({str(exc).splitlines()[0][:200]})") from None
    meta = table.schema.metadata or {}
    if MODEL_KEY not in meta or KIND_KEY not in meta or not {"embedding", "id", "source", "subset"} <= set(table.column_names):
        raise DataError(str(path), None, None, "not a rewardkit embeddings file (written by `rewardkit embed`)")
    vectors = np.asarray(table.column("embedding").combine_chunks().flatten(), dtype=np.float32)
    count = table.num_rows
    return PairEmbeddings(vectors.reshape(count, -1) if count else vectors.reshape(0, 0), meta[MODEL_KEY].decode(),
                          meta[KIND_KEY].decode(), table.column("id").to_pylist(), table.column("source").to_pylist(),
                          table.column("subset").to_pylist())


def check_same_model(pool: PairEmbeddings, target: PairEmbeddings, pool_name: str, target_name: str) -> None:
    if (pool.model, pool.kind) != (target.model, target.kind) or pool.vectors.shape[1] != target.vectors.shape[1]:
        raise ConfigError(f"{pool_name} and {target_name} come from different models ({pool.model!r}, "
                          f"{pool.vectors.shape[1]} dims vs {target.model!r}, {target.vectors.shape[1]} dims); "
                          "embed both with the same --model")
