"""PSP adapters: one file per PSP, all on the protocol in providers/base.py.

Adapters import nothing from `app` but `app.domain`. providers/sandbox/ emulates
the PSPs for development and tests.
"""
