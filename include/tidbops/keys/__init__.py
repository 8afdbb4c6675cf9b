"""Owner-held backup keys (#17): a fresh data key per backup, stored only wrapped with the owner's public key.

See ``tidbops.keys.owner``.
"""
