"""The search engine over HTTP: a FastAPI app (JSON API, video streaming, a web page) over one index folder.

``create_app(index_dir)`` builds the app; ``vtr serve --db INDEX`` runs it with uvicorn on 127.0.0.1.
Importing this package loads FastAPI only: the index and the model are opened when the server starts.
"""

from __future__ import annotations

from vtr.serve.app import create_app
from vtr.serve.service import SearcherLike, SearcherUnavailable, SearchService, ServiceBusy

__all__ = ["SearchService", "SearcherLike", "SearcherUnavailable", "ServiceBusy", "create_app"]
