"""Building a Node tree from a live model: identity de-duplication and unique paths.

Sources walk their framework's objects and hand each tensor to a :class:`TreeBuilder`, which
remembers the first path that reached each object. A later sighting of the same object (a
tied embedding, a layer shared by two parents) becomes an alias: listed where it appears,
``shared_with`` its owner, and never counted twice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from paramscope.core.dtypes import normalize_dtype, tensor_bytes
from paramscope.core.report import Role, Tensor


def join_path(parent: str, name: str) -> str:
    """A child's path: names joined by `/` from the root, whose own path is empty."""
    return f"{parent}/{name}" if parent else name


class UniqueNames:
    """Hands out sibling names, suffixing `_1`, `_2`… where a framework allowed duplicates.

    Each base name remembers the last suffix it handed out, so a file that repeats one name a
    million times costs a million steps, not half a million squared.
    """

    def __init__(self) -> None:
        self._taken: set[str] = set()
        self._next_suffix: dict[str, int] = {}

    def __call__(self, name: str) -> str:
        if name not in self._taken:
            self._taken.add(name)
            return name
        n = self._next_suffix.get(name, 0)
        while True:
            n += 1
            unique = f"{name}_{n}"
            if unique not in self._taken:
                break
        self._next_suffix[name] = n
        self._taken.add(unique)
        return unique


class TreeBuilder:
    """Makes :class:`Tensor` entries, de-duplicating the underlying objects by identity.

    The builder keeps a reference to every object it has seen, so identities stay valid for
    the whole walk even if a framework hands out temporary wrappers.
    """

    def __init__(self) -> None:
        self._owner_path: dict[int, str] = {}
        self._keep_alive: list[object] = []

    def tensor(
        self,
        obj: object,
        node_path: str,
        name: str,
        shape: Iterable[int],
        dtype: object,
        role: Role,
        persistent: bool | None = None,
        nbytes: int | None = None,  # where the dtype alone cannot say (block-quantized GGUF)
        params: int | None = None,  # logical parameters, where the shape does not say (packed)
        quantized: str | None = None,  # see Tensor.quantized
        key: str | None = None,  # see Tensor.key
    ) -> Tensor:
        path = join_path(node_path, name)
        owner = self._owner_path.get(id(obj))
        if owner is None:
            self._owner_path[id(obj)] = path
            self._keep_alive.append(obj)
        dims = tuple(map(int, shape))
        params = math.prod(dims) if params is None else params
        dtype_name = normalize_dtype(dtype)
        return Tensor(
            name=name,
            path=path,
            shape=dims,
            dtype=dtype_name,
            role=role,
            params=params,
            bytes=nbytes if nbytes is not None else tensor_bytes(params, dtype_name),
            shared_with=owner,
            persistent=persistent,
            quantized=quantized,
            key=key,
        )

    def origins(self) -> dict[str, object]:
        """Owner path -> the object it was read from, for every distinct tensor seen."""
        return {path: obj for obj, path in zip(self._keep_alive, self._owner_path.values(), strict=True)}

    def path_of(self, obj: object) -> str | None:
        """The owner path of an object already seen, else None."""
        return self._owner_path.get(id(obj))
