"""The `dpg` command-line interface: thin Typer commands over the node's services."""
