"""Chain watchers: following chains, crediting payments, reconciling, sweeping."""
