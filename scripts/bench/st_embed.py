"""sentence-transformers' side of examples/embed_bench.rs: embed the bench's texts on the CPU with
the same model directory, the same texts per call and the same number of compute threads as
embedb's local provider, and report texts/s.

The texts come as a JSON list; they are embedded in calls of ``--chunk`` texts (one call per
embedb INSERT statement), each with ``batch_size=--chunk``, after a small warm-up call outside the
timing; of ``--rounds`` passes the best counts (as on the Rust side). The vectors are written as
little-endian float32 rows to ``--out`` so the Rust side can check that both computed the same
embeddings. One line of JSON goes to stdout:
``{"texts_per_s", "rounds", "threads", "torch", "sentence_transformers", "load"}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def load_model(model_dir: str, max_seq_len: int):
    """The directory as sentence-transformers loads it, or, when it lacks something (e.g. the
    parameterless ``2_Normalize`` folder), the same pipeline built by hand: BERT, mean pooling,
    L2 normalisation."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(model_dir, device="cpu"), "directory"
    except Exception as e:  # noqa: BLE001 - any load failure falls back to the explicit pipeline
        print(f"st_embed: loading {model_dir} as a sentence-transformers dir failed ({e}); "
              "building Transformer + mean Pooling + Normalize", file=sys.stderr)
    try:  # the module path moved in sentence-transformers 6
        from sentence_transformers.sentence_transformer import modules as models
    except ImportError:
        from sentence_transformers import models
    bert = models.Transformer(model_dir, max_seq_length=max_seq_len)
    dims = getattr(bert, "get_embedding_dimension", None) or bert.get_word_embedding_dimension  # renamed in v6
    pool = models.Pooling(dims(), pooling_mode="mean")
    return SentenceTransformer(modules=[bert, pool, models.Normalize()], device="cpu"), "modules"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--texts", required=True, help="JSON file holding a list of strings")
    ap.add_argument("--chunk", type=int, required=True, help="texts per encode call (= rows per INSERT)")
    ap.add_argument("--threads", type=int, required=True, help="torch intra-op threads")
    ap.add_argument("--rounds", type=int, default=1, help="timed passes over the texts; the best counts")
    ap.add_argument("--max-seq-len", type=int, default=256)
    ap.add_argument("--out", required=True, help="where to write the vectors (float32 LE rows)")
    a = ap.parse_args()

    import numpy as np
    import sentence_transformers
    import torch

    torch.set_num_threads(a.threads)
    with open(a.texts, encoding="utf-8") as f:
        texts: list[str] = json.load(f)

    model, how = load_model(a.model_dir, a.max_seq_len)
    model.eval()
    model.encode(texts[:8], batch_size=a.chunk, show_progress_bar=False)  # warm-up, untimed

    rates = []
    with torch.inference_mode():
        for _ in range(max(1, a.rounds)):
            parts = []
            started = time.perf_counter()
            for i in range(0, len(texts), a.chunk):
                parts.append(model.encode(texts[i:i + a.chunk], batch_size=a.chunk, show_progress_bar=False,
                                          convert_to_numpy=True))
            rates.append(len(texts) / (time.perf_counter() - started))
            print(f"st_embed: round {len(rates)}: {rates[-1]:.1f} texts/s", file=sys.stderr)

    np.concatenate(parts).astype("<f4").tofile(a.out)
    print(json.dumps({
        "texts_per_s": max(rates),
        "rounds": rates,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "load": how,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
