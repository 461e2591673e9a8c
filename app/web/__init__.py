"""Cobro Checkout: the hosted pages customers see (contract section 9)."""
