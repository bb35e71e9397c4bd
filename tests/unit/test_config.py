from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_settings, parse_duration


class TestDurations:
    @pytest.mark.parametrize(
        ("text", "seconds"),
        [
            (90, 90),
            ("90", 90),
            ("30s", 30),
            ("15m", 900),
            ("2h", 7200),
            ("30d", 2_592_000),
            ("1.5h", 5400),
        ],
    )
    def test_accepts_seconds_and_units(self, text: object, seconds: float) -> None:
        assert parse_duration(text) == seconds

    @pytest.mark.parametrize("text", ["", "soon", "5w", "-1", "1 d 2h", True])
    def test_rejects_anything_else_naming_the_key(self, text: object) -> None:
        with pytest.raises(ConfigError, match=r"checkout\.stale_after"):
            parse_duration(text, "checkout.stale_after")


class TestLoading:
    def test_defaults_without_a_file(self) -> None:
        settings = load_settings(env={})
        assert settings.checkout.stale_after == 1800
        assert settings.database.url.startswith("sqlite+aiosqlite:///")

    def test_file_then_environment_override(self, tmp_path: Path) -> None:
        config = tmp_path / "gateway.toml"
        config.write_text('[checkout]\nstale_after = "10m"\n[server]\nport = 9000\n')
        settings = load_settings(
            config,
            env={
                "GATEWAY_SERVER_PORT": "9100",
                "GATEWAY_TOKENS_SECRET_KEYS": "new, old",
                "GATEWAY_STRIPE_API_BASE": "http://127.0.0.1:12111",
                "GATEWAY_DATABASE_URL": "postgresql+asyncpg://u@h/db",
                "GATEWAY_SERVER_PUBLIC_URL": "https://pay.example.org",
            },
        )
        assert settings.checkout.stale_after == 600  # from the file
        assert settings.server.port == 9100  # the environment wins
        assert settings.tokens.secret_keys == ("new", "old")  # comma-separated list
        assert settings.stripe.api_base == "http://127.0.0.1:12111"
        assert settings.database.url == "postgresql+asyncpg://u@h/db"
        assert settings.server.public_url == "https://pay.example.org"

    def test_gateway_config_variable_names_the_file(self, tmp_path: Path) -> None:
        config = tmp_path / "other.toml"
        config.write_text('[checkout]\norg_name = "Chess Club"\n')
        settings = load_settings(env={"GATEWAY_CONFIG": str(config)})
        assert settings.checkout.org_name == "Chess Club"

    def test_settings_are_frozen(self) -> None:
        settings = load_settings(env={})
        with pytest.raises(AttributeError):
            settings.server.port = 1  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("env", "key"),
        [
            ({"GATEWAY_SERVER_PORT": "eighty"}, "GATEWAY_SERVER_PORT"),
            ({"GATEWAY_CHECKOUT_STALE_AFTER": "later"}, "GATEWAY_CHECKOUT_STALE_AFTER"),
            (
                {"GATEWAY_CHECKOUT_REFUND_DUPLICATES": "perhaps"},
                "GATEWAY_CHECKOUT_REFUND_DUPLICATES",
            ),
            ({"GATEWAY_SERVER_PUBLIC_URL": "pay.example.org"}, "server.public_url"),
            (
                {"GATEWAY_CHECKOUT_STALE_AFTER": "10m", "GATEWAY_CHECKOUT_MIN_REMAINING": "5m"},
                "stale_after",
            ),
        ],
    )
    def test_wrong_values_name_the_key(self, env: dict[str, str], key: str) -> None:
        with pytest.raises(ConfigError, match=key):
            load_settings(env=env)

    @pytest.mark.parametrize(
        ("stale_after", "min_remaining"),
        [("15m", "15m"), ("10m", "20m"), ("30m", "59s"), ("23h", "3601"), ("24h", "1s")],
    )
    def test_a_session_life_outside_31m_to_24h_stops_the_start_naming_both_keys(
        self, stale_after: str, min_remaining: str
    ) -> None:
        env = {
            "GATEWAY_CHECKOUT_STALE_AFTER": stale_after,
            "GATEWAY_CHECKOUT_MIN_REMAINING": min_remaining,
        }
        with pytest.raises(ConfigError) as caught:
            load_settings(env=env)
        for name in ("checkout.stale_after", "checkout.min_remaining", "31m", "24h"):
            assert name in str(caught.value)

    @pytest.mark.parametrize(
        ("stale_after", "min_remaining"), [("30m", "1m"), ("1m", "30m"), ("12h", "12h")]
    )
    def test_a_session_life_from_31m_to_24h_is_accepted(
        self, stale_after: str, min_remaining: str
    ) -> None:
        env = {
            "GATEWAY_CHECKOUT_STALE_AFTER": stale_after,
            "GATEWAY_CHECKOUT_MIN_REMAINING": min_remaining,
        }
        checkout = load_settings(env=env).checkout
        assert (checkout.stale_after, checkout.min_remaining) == (
            parse_duration(stale_after),
            parse_duration(min_remaining),
        )

    def test_unknown_key_in_file_is_an_error(self, tmp_path: Path) -> None:
        config = tmp_path / "c.toml"
        config.write_text("[checkout]\nstale_afer = 5\n")
        with pytest.raises(ConfigError, match=r"checkout\.stale_afer"):
            load_settings(config, env={})

    def test_missing_explicit_file_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="not found"):
            load_settings(tmp_path / "nope.toml", env={})

    def test_serving_without_secrets_names_each_missing_one(self) -> None:
        settings = load_settings(env={})
        with pytest.raises(ConfigError) as caught:
            settings.validate_for_serving()
        for name in (
            "GATEWAY_TOKENS_SECRET_KEYS",
            "GATEWAY_STRIPE_API_KEY",
            "GATEWAY_STRIPE_WEBHOOK_SECRET",
        ):
            assert name in str(caught.value)

    def test_demo_mode_needs_no_secrets(self) -> None:
        load_settings(env={}, demo=True).validate_for_serving()
