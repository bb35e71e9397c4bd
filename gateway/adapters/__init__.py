"""Edges: the database, Stripe, tokens, mail. Each translates its library into domain terms."""
