"""Bot-aware checkout-link gateway: signed payment links to Stripe Checkout Sessions."""

__version__ = "0.1.0"
