"""How a pair (x, y) of group elements becomes model input (Power et al.; Nanda et al.).

- ``nanda``: tokens [x, y, =]; ``=`` is token n; vocabulary n + 1.
- ``power``: tokens [x, op, y, =]; op is token n, ``=`` token n + 1; vocabulary n + 2.
- ``onehot``: concat(onehot(x), onehot(y)): 2n float features, for MLPs.
- ``pair``: tokens [x, y]; vocabulary n (Hu et al.'s LSTM reads the bare pair).

Their names, and what each gives a model to read, are ``interp.config.ENCODINGS``.
"""

import torch


def encode_pairs(x: torch.Tensor, y: torch.Tensor, n: int, encoding: str
                 ) -> tuple[torch.Tensor, int | None]:
    """Encode pairs of element ids in [0, n): returns (inputs, vocab_size or None).

    x, y: [N] int64. inputs: [N, 2], [N, 3] or [N, 4] int64 tokens, or [N, 2n] float32.
    """
    if encoding == "nanda":
        equals = torch.full_like(x, n)
        return torch.stack([x, y, equals], dim=1), n + 1
    if encoding == "power":
        op, equals = torch.full_like(x, n), torch.full_like(x, n + 1)
        return torch.stack([x, op, y, equals], dim=1), n + 2
    if encoding == "pair":
        return torch.stack([x, y], dim=1), n
    if encoding == "onehot":
        eye = torch.eye(n)
        return torch.cat([eye[x], eye[y]], dim=1), None
    raise ValueError(f"unknown encoding {encoding!r}")
