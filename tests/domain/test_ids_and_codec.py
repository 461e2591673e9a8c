import os
from datetime import UTC, datetime

from app.domain.codec import (
    intent_from_dict,
    intent_to_dict,
    next_action_from_dict,
    next_action_to_dict,
)
from app.domain.ids import (
    intent_id_of_client_secret,
    is_client_secret,
    new_client_secret,
    new_intent_id,
    random_token,
)
from app.domain.intents import PaymentError, PaymentIntent, PaymentIntentStatus
from app.domain.methods import PaymentMethodType
from app.domain.money import Currency, Money
from app.domain.next_action import CryptoInstructions, OxxoVoucher, RedirectToUrl, SpeiInstructions

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_ids_are_prefixed_and_unique():
    ids = {new_intent_id() for _ in range(1_000)}
    assert len(ids) == 1_000
    assert all(i.startswith("pi_") and len(i) == 27 for i in ids)


def test_tokens_are_alphanumeric_of_the_length_asked():
    for length in (7, 16, 24, 32):
        token = random_token(length)
        assert len(token) == length and token.isalnum()
    assert len({random_token() for _ in range(20_000)}) == 20_000  # past one block


def test_a_forked_child_never_draws_its_parents_random_bytes():
    random_token()  # the parent now holds a partly used block
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write_end, random_token().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 100).decode()
    os.close(read_end)
    os.close(write_end)
    assert len(child) == 24
    assert child != random_token()


def test_client_secret_names_its_intent():
    intent_id = new_intent_id()
    secret = new_client_secret(intent_id)
    assert secret.startswith(f"{intent_id}_secret_")
    assert intent_id_of_client_secret(secret) == intent_id
    assert is_client_secret(secret)
    for not_a_secret in ("sk_test_dev", "pk_test_dev", "pi_abc", "pi_abc_secret_", intent_id):
        assert intent_id_of_client_secret(not_a_secret) is None


def test_every_next_action_round_trips():
    actions = [
        OxxoVoucher("12345678901234", NOW, "https://example.test/v"),
        SpeiInstructions("646180110400000007", "STP", "Cobro", "1234567", NOW),
        CryptoInstructions("USDC", "polygon", "0xabc", "29.41", "17.00", NOW),
        RedirectToUrl("https://example.test/3ds", None),
    ]
    for action in actions:
        assert next_action_from_dict(next_action_to_dict(action)) == action
    assert next_action_to_dict(None) is None


def test_intent_round_trips_through_plain_json():
    zero = Money(0, Currency.MXN)
    intent = PaymentIntent(
        id="pi_1",
        merchant_id="acct_1",
        status=PaymentIntentStatus.FAILED,
        version=3,
        amount=Money(50_000, Currency.MXN),
        amount_received=zero,
        amount_refunded=zero,
        client_secret="pi_1_secret_x",
        created_at=NOW,
        updated_at=NOW,
        method=PaymentMethodType.CARD,
        provider="stripe",
        description="Tacos",
        metadata={"order": "A-1"},
        allowed_methods=(PaymentMethodType.CARD,),
        next_action=OxxoVoucher("1", NOW),
        last_error=PaymentError("CARD_DECLINED", "no", "stripe"),
        expires_at=NOW,
    )
    assert intent_from_dict(intent_to_dict(intent)) == intent
