"""The image pipeline's core: records, key layout, imaging, stores and API documents (no Django, no handlers)."""
