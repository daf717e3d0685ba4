"""Every node of a vector index with its text, and nodes by id: from the docstore or from the vector store.

A ``VectorStoreIndex`` keeps its nodes in one of two places. Over a store that keeps no text (the
default ``SimpleVectorStore``) they live in the docstore; over a store that keeps the text itself
(Qdrant in its point payloads, Chroma as documents) the docstore is empty and the nodes live in the
collection. :func:`node_source` picks the right place for an index, or wraps nodes the caller passes.

Example::

    from llama_index_bge_finetune.integration.store_nodes import node_source

    source = node_source(index)
    nodes = source.all()                        # every node, text included
    found = source.get([nodes[0].node_id])      # by id, for nodes a search found elsewhere
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, List, Optional, Sequence

from llama_index_bge_finetune.errors import IntegrationError

logger = logging.getLogger(__name__)

_PAGE = 512  # points or records read per request


class NodeSource:
    """Where an index's nodes are read from: every node (:meth:`all`) or some by id (:meth:`get`).

    Attributes:
        where: the place in words, for messages (``"the docstore"``, ``"Qdrant collection 'docs'"``, ...).
    """

    where: str = "the given nodes"

    def all(self) -> List[Any]:
        """Every node, with its text when the place keeps it (an empty text when it does not)."""
        raise NotImplementedError

    def get(self, ids: Sequence[str]) -> List[Any]:
        """The nodes of ``ids`` that are still there, in any order."""
        raise NotImplementedError


class _GivenNodes(NodeSource):
    def __init__(self, nodes: Iterable[Any]) -> None:
        self._nodes: Dict[str, Any] = {}
        for node in nodes:
            node = getattr(node, "node", node)  # a NodeWithScore is read as its node
            self._nodes[node.node_id] = node

    def all(self) -> List[Any]:
        return list(self._nodes.values())

    def get(self, ids: Sequence[str]) -> List[Any]:
        return [self._nodes[i] for i in ids if i in self._nodes]


class _DocstoreNodes(NodeSource):
    where = "the docstore"

    def __init__(self, docstore: Any, node_ids: List[str]) -> None:
        self._docstore = docstore
        self._ids = node_ids

    def all(self) -> List[Any]:
        return self._docstore.get_nodes(self._ids, raise_error=False)

    def get(self, ids: Sequence[str]) -> List[Any]:
        return self._docstore.get_nodes(list(ids), raise_error=False)


class _QdrantNodes(NodeSource):
    def __init__(self, vector_store: Any) -> None:
        self._store = vector_store
        self._client = vector_store.client
        self._name = vector_store.collection_name
        self.where = f"Qdrant collection {self._name!r}"

    def all(self) -> List[Any]:
        nodes: List[Any] = []
        offset = None
        while True:
            points, offset = self._client.scroll(collection_name=self._name, limit=_PAGE, offset=offset,
                                                 with_payload=True, with_vectors=False)
            nodes.extend(self._node(p) for p in points)
            if offset is None:
                return nodes

    def get(self, ids: Sequence[str]) -> List[Any]:
        points = self._client.retrieve(collection_name=self._name, ids=list(ids), with_payload=True,
                                       with_vectors=False)
        return [self._node(p) for p in points]

    def _node(self, point: Any) -> Any:
        from llama_index.core.schema import TextNode

        try:
            return self._store.parse_to_query_result([point]).nodes[0]
        except (ValueError, KeyError, TypeError):  # a payload without the node's content or text
            return TextNode(id_=str(point.id), text="")


class _ChromaNodes(NodeSource):
    def __init__(self, vector_store: Any) -> None:
        self._collection = vector_store._collection
        self.where = f"Chroma collection {self._collection.name!r}"

    def all(self) -> List[Any]:
        nodes: List[Any] = []
        offset = 0
        while True:
            got = self._collection.get(offset=offset, limit=_PAGE, include=["documents", "metadatas"])
            if not got["ids"]:
                return nodes
            nodes.extend(self._nodes(got))
            offset += len(got["ids"])

    def get(self, ids: Sequence[str]) -> List[Any]:
        return self._nodes(self._collection.get(ids=list(ids), include=["documents", "metadatas"]))

    @staticmethod
    def _nodes(got: Dict[str, Any]) -> List[Any]:
        from llama_index.core.schema import TextNode
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        ids = got["ids"]
        documents = got.get("documents") or [None] * len(ids)
        metadatas = got.get("metadatas") or [None] * len(ids)
        out = []
        for vid, text, meta in zip(ids, documents, metadatas):
            try:
                node = metadata_dict_to_node(meta or {})
            except (ValueError, KeyError, TypeError):  # a record written without LlamaIndex's node metadata
                node = TextNode(id_=vid)
            node.set_content(text or "")
            out.append(node)
        return out


def node_source(index: Any, nodes: Optional[Iterable[Any]] = None) -> NodeSource:
    """Where ``index``'s nodes are: ``nodes`` when given, else its docstore or its Qdrant/Chroma collection.

    Args:
        index: a ``VectorStoreIndex``.
        nodes: the index's nodes (or ``NodeWithScore``s), when the caller has them; used as they are.

    Raises:
        IntegrationError: the nodes are in neither the docstore nor a store this module can read;
            the message says to pass ``nodes=``.
    """
    if nodes is not None:
        return _GivenNodes(nodes)
    vector_store = index.vector_store
    node_ids = list(dict.fromkeys(index.index_struct.nodes_dict.values()))
    if node_ids or not getattr(vector_store, "stores_text", False):
        if not node_ids:
            raise IntegrationError(
                f"Index {index.index_id} lists no nodes and its {type(vector_store).__name__} keeps no text (it was "
                "made with from_vector_store over vectors alone), so there is no text to search. Pass the nodes: "
                "nodes=... (the nodes the index was built from).")
        return _DocstoreNodes(index.docstore, node_ids)
    kind = type(vector_store).__name__
    if kind == "QdrantVectorStore":
        return _QdrantNodes(vector_store)
    if kind == "ChromaVectorStore":
        return _ChromaNodes(vector_store)
    raise IntegrationError(
        f"Cannot read the nodes of a {kind}: reading every node is supported for the docstore, "
        "QdrantVectorStore and ChromaVectorStore. Pass the nodes the index was built from: nodes=...")
