"""The REST sidecar: health, metrics, request limits (webhooks come with events)."""
