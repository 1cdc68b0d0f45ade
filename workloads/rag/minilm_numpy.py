"""all-MiniLM-L6-v2's forward pass in numpy: the query path without torch or transformers.

A cold ``mlp rag ask`` spent ~9 of its 11 s importing torch and transformers and loading the model
through them, to embed one question (and the few sentences the extractive answer ranks). This
module reads the same ``model.safetensors`` with ``safetensors.numpy`` and runs the same BERT
(6 layers, 384 hidden, 12 heads, exact GELU, mean pooling, L2 normalisation) with numpy matrix
products, in float32. Ingestion keeps the torch path (batched, bf16 where the CPU has it);
:class:`workloads.rag.embeddings.MiniLMEmbedder` picks this path for small batches when torch is
not loaded yet. ``tests/workloads/test_rag_embeddings_numpy.py`` checks cosine ≥ 0.9999 against the
torch path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np


def _erf(x: np.ndarray) -> np.ndarray:
    """erf, vectorised (Abramowitz & Stegun 7.1.26: absolute error below 1.5e-7)."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    result: np.ndarray = sign * (1.0 - poly * np.exp(-a * a))
    return result


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, ``x * Φ(x)`` (BERT's erf form, not the tanh approximation)."""
    result: np.ndarray = (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)
    return result


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    result: np.ndarray = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return result


class NumpyMiniLM:
    """BERT encoder + mean pooling of all-MiniLM-L6-v2, in numpy.

    Args:
        model_dir: Directory with ``config.json``, ``model.safetensors`` and ``tokenizer.json``.
        max_length: Tokens read per text (as the torch path).
    """

    def __init__(self, model_dir: Path, max_length: int = 256) -> None:
        self.model_dir = Path(model_dir)
        self.max_length = max_length
        config = json.loads((self.model_dir / "config.json").read_text())
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.hidden = int(config["hidden_size"])
        self.eps = float(config["layer_norm_eps"])

    @cached_property
    def weights(self) -> dict[str, np.ndarray]:
        """The model's tensors by name (``embeddings.…``, ``encoder.layer.N.…``), float32."""
        from safetensors.numpy import load_file

        raw = load_file(str(self.model_dir / "model.safetensors"))
        out = {}
        for key, value in raw.items():
            name = key.removeprefix("bert.")
            # Linear layers' weights stored transposed and contiguous: x @ W_t, no strided reads.
            if name.startswith("encoder.") and name.endswith(".weight") and value.ndim == 2:
                out[name] = np.ascontiguousarray(value.T, dtype=np.float32)
            else:
                out[name] = value.astype(np.float32)
        return out

    @cached_property
    def tokenizer(self) -> Any:
        """The packaged WordPiece tokenizer, truncating at ``max_length``."""
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_length)
        tokenizer.no_padding()
        return tokenizer

    def _encode(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Mean-pooled last hidden states of a padded batch ``ids`` (B, L) with ``mask`` (B, L)."""
        w = self.weights
        batch, length = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        head_dim = self.hidden // self.heads
        scale = 1.0 / math.sqrt(head_dim)
        # Padding keys get -inf-like scores, so padded positions never attend or get attended to.
        key_bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)

        def heads(t: np.ndarray) -> np.ndarray:
            split: np.ndarray = t.reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3)
            return split

        for i in range(self.layers):
            p = f"encoder.layer.{i}."

            def linear(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
                projected: np.ndarray = t @ w[p + name + ".weight"] + w[p + name + ".bias"]
                return projected

            q = heads(linear(x, "attention.self.query"))
            k = heads(linear(x, "attention.self.key"))
            v = heads(linear(x, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) * scale + key_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, self.hidden)
            x = _layer_norm(
                linear(context, "attention.output.dense") + x,
                w[p + "attention.output.LayerNorm.weight"],
                w[p + "attention.output.LayerNorm.bias"],
                self.eps,
            )
            inner = _gelu(linear(x, "intermediate.dense"))
            x = _layer_norm(
                linear(inner, "output.dense") + x,
                w[p + "output.LayerNorm.weight"],
                w[p + "output.LayerNorm.bias"],
                self.eps,
            )
        weights = mask[:, :, None].astype(np.float32)
        pooled: np.ndarray = (x * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        return pooled

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text."""
        from threadpoolctl import threadpool_limits

        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        # Small products: one BLAS thread; a thread pool spinning up per product costs more (and,
        # on a busy machine, far more) than it saves.
        encodings = self.tokenizer.encode_batch(list(texts))
        # Sorted by length and cut into batches of similar lengths: little padding per batch.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        with threadpool_limits(1, user_api="blas"):
            for start in range(0, len(order), 16):
                rows = order[start : start + 16]
                length = max(len(encodings[i].ids) for i in rows)
                ids = np.zeros((len(rows), length), dtype=np.int64)
                mask = np.zeros((len(rows), length), dtype=np.int64)
                for j, i in enumerate(rows):
                    ids[j, : len(encodings[i].ids)] = encodings[i].ids
                    mask[j, : len(encodings[i].ids)] = 1
                out[rows] = self._encode(ids, mask)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: np.ndarray = out / np.maximum(norms, 1e-12)
        return unit
