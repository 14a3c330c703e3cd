"""sentence-transformers' side of examples/embed_bench.rs: embed the bench's texts on the CPU with
the same model directory, the same texts per call and the same number of compute threads as
embedb's local provider, and report texts/s.

The texts come as a JSON list; one pass embeds them in calls of ``--chunk`` texts (one call per
embedb INSERT statement), each with ``batch_size=--chunk``. After loading the model and a small
untimed warm-up call it prints one JSON line ``{"ready", "threads", "torch",
"sentence_transformers", "load"}``, then runs one timed pass per ``run`` line read from stdin and
answers each with ``{"texts_per_s"}``, so the Rust side can alternate these passes with its own
and a neighbour's burst of CPU hits every contender alike. At end of input it writes the last
pass's vectors as little-endian float32 rows to ``--out`` (the Rust side checks both computed the
same embeddings) and exits.
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
    print(json.dumps({
        "ready": True,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "load": how,
    }), flush=True)

    parts = []
    with torch.inference_mode():
        for line in sys.stdin:
            if line.strip() != "run":
                continue
            parts = []
            started = time.perf_counter()
            for i in range(0, len(texts), a.chunk):
                parts.append(model.encode(texts[i:i + a.chunk], batch_size=a.chunk, show_progress_bar=False,
                                          convert_to_numpy=True))
            print(json.dumps({"texts_per_s": len(texts) / (time.perf_counter() - started)}), flush=True)
    if parts:
        np.concatenate(parts).astype("<f4").tofile(a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
