"""Use cases. Each owns its transactions and speaks to adapters through small interfaces."""
