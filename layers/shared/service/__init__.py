"""Shared domain code of the contract-drift scorer and traverse_answer (the Lambda layer)."""
