"""Using trained models: evaluation (perplexity, bits per character) and sampling."""
