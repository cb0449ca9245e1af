"""The data side of minimind-hf: web text, corpus builders and related tools."""
