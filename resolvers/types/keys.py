"""A merchant's API keys (contract section 10): never the key, except when made."""

from __future__ import annotations

from datetime import datetime

import strawberry

from app.domain.keys import ApiKey as DomainApiKey
from resolvers.types.enums import ApiKeyKind
from resolvers.types.payloads import UserError


@strawberry.type
class ApiKey:
    kind: ApiKeyKind
    key: str | None = strawberry.field(description="Only in the answer that makes it.")
    last4: str = strawberry.field(
        description='The key\'s last four characters ("" for keys made before they were kept).'
    )
    created_at: datetime
    expires_at: datetime | None = strawberry.field(
        description="When a rolled key stops working; null while it is the current one."
    )

    @classmethod
    def from_domain(cls, key: DomainApiKey) -> ApiKey:
        return cls(
            kind=key.kind,
            key=key.key,
            last4=key.last4,
            created_at=key.created_at,
            expires_at=key.expires_at,
        )


@strawberry.type
class ApiKeyPayload:
    api_key: ApiKey | None
    errors: list[UserError]
