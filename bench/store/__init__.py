"""The store: what is kept and under which names (the study and curve-table schema, the
identity of a measurement, the results folder's layout, storages, artifacts, the shipped
reference tables, whether a stored file can be read) and how a number reads in words."""

__all__ = ["artifacts", "curves", "damage", "identity", "layout", "reference", "schema", "storage",
           "studies", "wording"]
