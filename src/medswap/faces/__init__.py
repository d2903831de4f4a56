"""Finding, following and recognising faces."""
