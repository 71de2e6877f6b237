"""In-memory adapters shipped for tests, simulations and `dpg dev` (like httpx's MockTransport)."""
