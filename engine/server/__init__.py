"""The Litestar server: webhooks, sockets, the API, metrics and the web UI on one port."""
