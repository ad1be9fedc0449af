from accounts.tokens import generate_token, hash_matches, hash_token, looks_like_api_token, parse_token


def test_generated_token_has_prefix_and_parses():
    generated = generate_token()
    assert generated.plaintext.startswith(f"mlp_{generated.prefix}_")
    assert len(generated.prefix) == 8
    assert parse_token(generated.plaintext) == generated


def test_two_tokens_differ():
    assert generate_token().plaintext != generate_token().plaintext


def test_parse_rejects_malformed_tokens():
    for value in ["", "abc", "mlp_", "mlp_short_x", "mlp_ABCDEFGH_secret", "mlp_abcdefgh-secret", "mlp_abcdefgh_"]:
        assert parse_token(value) is None, value


def test_hash_matches_only_the_same_token():
    token = generate_token().plaintext
    assert hash_matches(token, hash_token(token))
    assert not hash_matches(token + "x", hash_token(token))
    assert len(hash_token(token)) == 64


def test_looks_like_api_token():
    assert looks_like_api_token("mlp_x")
    assert not looks_like_api_token("eyJhbGciOi.x.y")
