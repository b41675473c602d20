"""Models: frame tokenizer, text encoder, latent actions, the world model (and later the WAM)."""
