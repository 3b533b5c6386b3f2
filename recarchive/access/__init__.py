"""Access: staff users, roles, API tokens and the hash-chained audit log."""
