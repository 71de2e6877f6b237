"""What the chain watchers see and decide, free of I/O: blocks, payments, confirmations, reorgs."""
