"""The model registry: inventory, versions, lifecycle and aliases, with lineage and audit."""
