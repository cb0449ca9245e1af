"""Serving a checkpoint: an OpenAI-compatible HTTP server with batched generation and a translation page.

FastAPI and uvicorn come with the ``serve`` extra (``pip install minimind-hf[serve]``).
"""

from .app import ServedModel, create_app, serve
from .batching import BatchingEngine, GenerationRequest

__all__ = ["BatchingEngine", "GenerationRequest", "ServedModel", "create_app", "serve"]
