"""One module per resource; each exports ``ROUTES``, the handlers it contributes."""
