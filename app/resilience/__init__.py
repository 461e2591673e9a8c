"""Circuit breakers around PSP calls."""
