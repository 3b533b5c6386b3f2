"""Catalogue: the SQL database of recordings, customers and everything about them."""
