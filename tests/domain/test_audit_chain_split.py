"""The canonical content split around `seq` (what PostgreSQL links at COMMIT) is
exactly the canonical content with the position put back, whatever the data."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from app.domain import audit_chain

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
data = st.none() | st.dictionaries(
    st.sampled_from(["seq", "status", "type", "x"]) | st.text(), json_values, max_size=5
)
optional_text = st.none() | st.text()


@given(
    data=data,
    status=optional_text,
    provider=optional_text,
    type_=st.text(),
    seq=st.integers(1, 2**62),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_prefix_seq_suffix_is_the_canonical_content(data, status, provider, type_, seq, at):
    content = dict(
        merchant_id="acct_1", intent_id="pi_1", type=type_, status=status, provider=provider,
        at=at, data=data,
    )  # fmt: skip
    prefix, suffix = audit_chain.canonical_around_seq(**content)
    assert prefix + str(seq).encode() + suffix == audit_chain.canonical(**content, seq=seq)


def test_the_split_is_at_the_top_level_seq():
    prefix, suffix = audit_chain.canonical_around_seq(
        merchant_id="acct_1",
        intent_id="pi_1",
        type="t",
        status="S",
        provider=None,
        at=datetime(2026, 1, 31, 12, tzinfo=UTC),
        data={"seq": 0, "status": "x"},
    )
    assert prefix.endswith(b'"provider":null,"seq":')
    assert suffix == b',"status":"S","type":"t"}'
