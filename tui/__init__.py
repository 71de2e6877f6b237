"""The terminal dashboard (`dpg dashboard`), a Textual app over the node's HTTP API.

Not built yet: it arrives with the operator-surface work (issue 7). It will talk to a
running node only through `dpgnode.client`, never by opening the database.
"""
