import pytest
from django.core import signing

from sequent.mail import tokens


def test_it_reads_back_each_kind_of_token():
    assert tokens.read_open_token(tokens.make_open_token(42)) == 42
    assert tokens.read_click_token(tokens.make_click_token(42, 3)) == (42, 3)
    assert tokens.read_unsubscribe_token(tokens.make_unsubscribe_token(message_id=42)) == (
        tokens.UnsubscribeTarget("message", 42)
    )
    assert tokens.read_unsubscribe_token(tokens.make_unsubscribe_token(contact_id=7)) == (
        tokens.UnsubscribeTarget("contact", 7)
    )


def test_it_makes_tokens_that_fit_in_a_url_path():
    token = tokens.make_click_token(123456, 12)
    assert all(char.isalnum() or char in "-_:" for char in token)


def flip(token, position):
    char = token[position]
    return token[:position] + ("A" if char != "A" else "B") + token[position + 1 :]


@pytest.mark.parametrize("position", [0, 3, -1, -10])
def test_it_refuses_a_tampered_token(position):
    token = tokens.make_click_token(42, 0)
    with pytest.raises(tokens.BadToken):
        tokens.read_click_token(flip(token, position))


def test_it_refuses_a_truncated_or_empty_token():
    token = tokens.make_open_token(42)
    for broken in (token[:-1], token[: len(token) // 2], token.split(":")[0], "", ":", "::"):
        with pytest.raises(tokens.BadToken):
            tokens.read_open_token(broken)


def test_it_refuses_a_token_of_another_purpose():
    open_token = tokens.make_open_token(42)
    click_token = tokens.make_click_token(42, 0)
    unsubscribe_token = tokens.make_unsubscribe_token(message_id=42)
    with pytest.raises(tokens.BadToken):
        tokens.read_click_token(open_token)
    with pytest.raises(tokens.BadToken):
        tokens.read_unsubscribe_token(open_token)
    with pytest.raises(tokens.BadToken):
        tokens.read_open_token(click_token)
    with pytest.raises(tokens.BadToken):
        tokens.read_unsubscribe_token(click_token)
    with pytest.raises(tokens.BadToken):
        tokens.read_open_token(unsubscribe_token)


def test_it_refuses_a_token_signed_with_another_key(settings):
    token = tokens.make_open_token(42)
    settings.SECRET_KEY = "another-secret-key-" * 3
    with pytest.raises(tokens.BadToken):
        tokens.read_open_token(token)


def test_it_still_reads_tokens_signed_with_a_fallback_key(settings):
    token = tokens.make_open_token(42)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "the-new-secret-key-" * 3
    assert tokens.read_open_token(token) == 42


def test_it_refuses_a_validly_signed_payload_of_the_wrong_shape():
    # Signed with the right salt but holding what no make_* function produces.
    for payload in ("42", True, -1, 0, [1], [1, 2, 3], [1, -2], {"x": 1}, {"m": 1, "c": 2}, {"m": "1"}):
        for salt, read in (
            ("sequent.mail.open", tokens.read_open_token),
            ("sequent.mail.click", tokens.read_click_token),
            ("sequent.mail.unsubscribe", tokens.read_unsubscribe_token),
        ):
            with pytest.raises(tokens.BadToken):
                read(signing.dumps(payload, salt=salt))


def test_it_refuses_to_make_a_token_for_a_bad_id():
    with pytest.raises(ValueError, match="message_id"):
        tokens.make_open_token(0)
    with pytest.raises(ValueError):
        tokens.make_click_token(1, -1)
    with pytest.raises(ValueError):
        tokens.make_unsubscribe_token(message_id=1, contact_id=2)
    with pytest.raises(ValueError):
        tokens.make_unsubscribe_token()
