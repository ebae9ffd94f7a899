"""How a server process is run, engine-agnostic: local process, existing server (Docker: not yet)."""
