"""Code graphs: the Python parser, the embedded LadybugDB store, the Neo4j source, ingest."""

__all__: list[str] = []
