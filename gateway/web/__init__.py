"""HTTP: handlers stay small; domain errors become pages in one middleware."""
