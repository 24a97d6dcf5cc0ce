"""Test doubles that speak the real protocols: a Slack incoming-webhook stub and a Sentry envelope receiver.

Both are stdlib ``http.server`` servers in a background thread on a free 127.0.0.1 port; they record
everything they receive so tests can assert on the real payloads the code under test sent.
"""

from tests.support.sentry_receiver import SentryEnvelope, SentryReceiver
from tests.support.slack_stub import SlackStub

__all__ = ["SentryEnvelope", "SentryReceiver", "SlackStub"]
