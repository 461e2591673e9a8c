"""The GraphQL layer: Strawberry types, queries, mutations, subscriptions.

Resolvers parse, call one service, and map the result; they never touch the
database or a PSP.
"""
