"""The ``gateway emulator`` command's options."""

from __future__ import annotations

import argparse

from gateway.dev.emulator.cli import DEFAULT_PORT, add_arguments, build


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    args = parse()
    assert (args.host, args.port) == ("127.0.0.1", DEFAULT_PORT)
    emulator = build(args)
    assert emulator.public_url == f"http://127.0.0.1:{DEFAULT_PORT}"
    assert emulator.webhooks.url is None
    assert emulator.webhook_mode == "auto"
    assert emulator.faults.fail_next == 0


def test_without_a_seed_each_run_issues_different_ids() -> None:
    assert build(parse()).seed != build(parse()).seed


def test_options_reach_the_emulator() -> None:
    args = parse(
        "--port", "9999",
        "--public-url", "https://pay.example/",
        "--webhook-url", "http://127.0.0.1:8080/stripe/webhook",
        "--webhook-secret", "whsec_x",
        "--webhook-retry-delays", "1,2",
        "--seed", "5",
        "--latency", "0.2",
        "--error-rate", "0.1",
        "--fail-next", "3",
        "--drop-next", "1",
        "--fault-path", "/v1/checkout",
        "--webhook-loss-rate", "0.5",
        "--duplicate-webhooks", "0.25",
        "--reorder-webhooks",
    )  # fmt: skip
    emulator = build(args)
    assert emulator.public_url == "https://pay.example"
    assert emulator.webhooks.url == "http://127.0.0.1:8080/stripe/webhook"
    assert emulator.webhooks.secret == "whsec_x"
    assert emulator.webhooks.retry_delays == (1.0, 2.0)
    assert emulator.seed == 5
    faults = emulator.faults
    assert (faults.latency, faults.error_rate, faults.fail_next, faults.drop_next) == (
        0.2,
        0.1,
        3,
        1,
    )
    assert faults.paths == ["/v1/checkout"]
    assert (faults.webhook_loss_rate, faults.duplicate_webhooks) == (0.5, 0.25)
    assert faults.reorder_webhooks is True
