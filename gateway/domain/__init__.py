"""The pure core: order states, the checkout decision, money. Imports no I/O library."""
