"""The dashboard's screens: one per area of the node, each loading over the API."""
