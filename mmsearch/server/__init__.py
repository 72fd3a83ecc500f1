"""The HTTP server around the web app: what it may touch (policy), which requests it takes (guard),
and the FastAPI application that mounts the Gradio UI next to mmsearch's own routes (http)."""
