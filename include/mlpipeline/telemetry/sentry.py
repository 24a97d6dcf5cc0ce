"""Error tracking with Sentry, with secrets scrubbed from every event.

Two users:

- the prediction API: :func:`init_sentry` (called from ``create_app``) starts the SDK when
  ``MLP_SENTRY_DSN`` is set, with the service's environment and the code version as release;
- Airflow tasks: Airflow's own integration (``[sentry] sentry_on``) starts the SDK in each task
  process; :func:`protect_active_client` then adds the same scrubbing to that client (the DAGs call it
  through an ``on_execute_callback`` in ``default_args``). Airflow 3.3.2 passes ``[sentry]
  before_send`` to ``sentry_sdk.init`` as the dotted-path *string*, which makes the SDK drop every
  event, so that option must stay unset; this module resolves such a string if it finds one.

What never leaves the process, on top of Sentry's own defaults (no default PII, and the SDK's
``EventScrubber`` with its default denylist): the values of credential headers (``X-API-Key``,
``Authorization``, ``Cookie``) and of keys named like secrets anywhere in the event, and any string
equal to or containing a *known secret value*: the API key, the passwords of ``AIRFLOW_CONN_*``
connections and of URLs in the environment, and every environment variable named like a secret
(``*KEY*``, ``*SECRET*``, ``*PASSWORD*``, ``*TOKEN*``, ...). Scrubbing runs in ``before_send``, after the SDK
has turned local variables and objects into strings, so a secret inside an object's ``repr`` is
caught too.

Importing this module is cheap (``sentry_sdk`` loads only when Sentry is turned on).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from include.mlpipeline.core.settings import Settings

log = logging.getLogger(__name__)

FILTERED = "[Filtered]"
MIN_SECRET_LENGTH = 6
# Keys whose values are dropped wherever they appear in an event (compared lower-case, "-" as "_").
SENSITIVE_KEYS = frozenset(
    {
        "x_api_key",
        "api_key",
        "apikey",
        "authorization",
        "proxy_authorization",
        "cookie",
        "cookies",
        "set_cookie",
        "password",
        "passwd",
        "secret",
        "secret_key",
        "token",
        "access_token",
        "refresh_token",
        "fernet_key",
        "jwt_secret",
        "private_key",
        "credentials",
        "webhook_token",
    }
)
_SECRET_ENV_NAME = re.compile(r"KEY|SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE", re.IGNORECASE)
# Environment variables named like secrets whose values are not (identifiers, paths).
_NOT_SECRET_ENV = re.compile(r"(KEY_ID|_FILE|_PATH|_DIR)$", re.IGNORECASE)
_SCRUBBER_MARK = "__mlp_scrubber__"
_state: dict[str, Any] = {"dsn": None, "logged_off": False}


# ------------------------------------------------------------------------------------ secrets
def _url_password(value: str) -> str | None:
    if "://" not in value or "@" not in value:
        return None
    try:
        password = urlsplit(value.strip()).password
    except ValueError:
        return None
    return unquote(password) if password else None


def _connection_secrets(value: str) -> set[str]:
    """Secret parts of an ``AIRFLOW_CONN_*`` value: JSON (password, secret-named extras) or a URI."""
    found: set[str] = set()
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        if parsed.get("password"):
            found.add(str(parsed["password"]))
        extra = parsed.get("extra") or {}
        if isinstance(extra, str):
            try:
                extra = json.loads(extra)
            except ValueError:
                extra = {}
        if isinstance(extra, dict):
            found |= {
                str(v) for k, v in extra.items() if v and (_is_sensitive_key(k) or _SECRET_ENV_NAME.search(str(k)))
            }
    elif password := _url_password(value):
        found.add(password)
    return found


def known_secrets(settings: Settings | None = None, environ: Mapping[str, str] | None = None) -> set[str]:
    """Secret values this process knows: from the settings and the environment (see the module doc)."""
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    if settings is not None and settings.api_key_value:
        found.add(settings.api_key_value)
    for name, value in environ.items():
        if not value:
            continue
        if name.upper().startswith("AIRFLOW_CONN_"):
            found |= _connection_secrets(value)
        elif _SECRET_ENV_NAME.search(name) and not _NOT_SECRET_ENV.search(name):
            found.add(value)
        if password := _url_password(value):
            found.add(password)
    return {s for s in found if len(s) >= MIN_SECRET_LENGTH and s.lower() not in {"true", "false", "none", "null"}}


def _is_sensitive_key(key: object) -> bool:
    """A secret-like name, also as the SDK serializes ASGI header names in local variables (``"b'cookie'"``)."""
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    if not isinstance(key, str):
        return False
    name = key.strip()
    if name[:2] in {"b'", 'b"'} and name[-1:] == name[1]:
        name = name[2:-1]
    elif len(name) > 1 and name[0] in {"'", '"'} and name[-1] == name[0]:
        name = name[1:-1]
    return name.lower().replace("-", "_") in SENSITIVE_KEYS


# ---------------------------------------------------------------------------------- scrubbing
def _airflow_redact() -> Callable[[str], str] | None:
    """Airflow's secrets masker (connections and variables this task process has fetched), if loaded."""
    module = sys.modules.get("airflow.sdk._shared.secrets_masker")
    redact = getattr(module, "redact", None)
    if redact is None:
        return None

    def apply(text: str) -> str:
        try:
            value = redact(text)
        except Exception:  # best effort: our own scrubbing has already run
            return text
        return value if isinstance(value, str) else text

    return apply


def scrub_event(event: dict[str, Any], secrets: Iterable[str]) -> dict[str, Any]:
    """``event`` with credential headers, secret-named keys and known secret values replaced (in place)."""
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)  # longest first: no partial leftovers
    redact = _airflow_redact()

    def text(value: str) -> str:
        for secret in ordered:
            if secret in value:
                value = value.replace(secret, FILTERED)
        return redact(value) if redact else value

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return text(node)
        if isinstance(node, dict):
            return {
                (text(k) if isinstance(k, str) else k): (FILTERED if _is_sensitive_key(k) and v else walk(v))
                for k, v in node.items()
            }
        if isinstance(node, list | tuple):
            # Header lists come as [name, value] pairs.
            if len(node) == 2 and _is_sensitive_key(node[0]) and isinstance(node[1], str):
                return [node[0], FILTERED]
            return [walk(item) for item in node]
        return node

    request = event.get("request")
    if isinstance(request, dict):
        request.pop("cookies", None)
    scrubbed = walk(event)
    event.clear()
    event.update(scrubbed)
    return event


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with known secret values (default: :func:`known_secrets` of this process) replaced."""
    if secrets is None:
        from include.mlpipeline.core.settings import get_settings

        secrets = known_secrets(get_settings())
    return scrub_event({"text": text}, secrets)["text"]


def make_before_send(
    secrets: Iterable[str], then: Callable[[dict[str, Any], dict[str, Any]], Any] | None = None
) -> Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]:
    """A Sentry ``before_send`` scrubbing ``secrets`` (then calling ``then``, a previous hook, if any)."""
    frozen = frozenset(secrets)

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        event = scrub_event(event, frozen)
        return then(event, hint) if then is not None else event

    setattr(before_send, _SCRUBBER_MARK, True)
    return before_send


# ------------------------------------------------------------------------------ the prediction API
def init_sentry(settings: Settings | None = None, **options: Any) -> bool:
    """Start Sentry for the prediction API if ``MLP_SENTRY_DSN`` is set; returns whether it is on.

    Unhandled errors (the API logs them with their traceback, which Sentry's logging integration
    turns into an event with the exception), and 5xx answers raised on purpose with status 500,
    reach Sentry with the request (headers scrubbed), environment and release (the code version).
    Calling it again with the same DSN does nothing. ``options`` go to ``sentry_sdk.init``.
    """
    from include.mlpipeline.core.settings import get_settings

    settings = settings or get_settings()
    dsn = settings.sentry_dsn_value
    if not dsn:
        if not _state["logged_off"]:
            log.info("Sentry is off for the API (MLP_SENTRY_DSN is not set)")
            _state["logged_off"] = True
        return False
    if _state["dsn"] == dsn and not options:
        return True

    import sentry_sdk
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    from include.mlpipeline.core.code_version import code_version

    # 503 "no model loaded yet" is an expected answer while the service starts, not an error.
    failed_codes = {500}
    before_send = make_before_send(known_secrets(settings))
    sentry_sdk.init(
        **{
            "dsn": dsn,
            "environment": settings.sentry_environment,
            "release": code_version(),
            # No PII by leaving send_default_pii unset: sentry_sdk (2.75, pinned) deprecates the option in
            # favour of data_collection, and with neither set it behaves as send_default_pii=False and
            # keeps its EventScrubber. Passing data_collection instead would switch that scrubber off.
            "before_send": before_send,
            "before_send_transaction": before_send,
            "integrations": [
                StarletteIntegration(failed_request_status_codes=failed_codes),
                FastApiIntegration(failed_request_status_codes=failed_codes),
            ],
            "shutdown_timeout": 2,
            **options,
        }
    )
    sentry_sdk.set_tag("service", "prediction-api")
    _state["dsn"] = dsn
    log.info("Sentry is on for the API (environment %s)", settings.sentry_environment)
    return True


def shutdown_sentry(timeout: float = 2.0) -> None:
    """Flush and close the active Sentry client (tests; a process that stops reporting)."""
    if "sentry_sdk" not in sys.modules:
        return
    import sentry_sdk

    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)
    sentry_sdk.get_global_scope().set_client(None)
    _state["dsn"] = None


# --------------------------------------------------------------------------------- Airflow tasks
def _resolve_hook(hook: Any) -> Callable[..., Any] | None:
    if hook is None or callable(hook):
        return hook
    if isinstance(hook, str):  # Airflow 3.3.2 hands [sentry] before_send over unresolved
        from importlib import import_module

        module, _, name = hook.rpartition(".")
        try:
            return getattr(import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            log.warning("ignoring Sentry before_send %r: cannot import it", hook)
    return None


def protect_active_client() -> bool:
    """Add secret scrubbing to the Sentry client someone else started (Airflow's task integration).

    Returns whether a client is active. Idempotent; costs nothing when ``sentry_sdk`` is not loaded.
    """
    if "sentry_sdk" not in sys.modules:
        return False
    import sentry_sdk

    client = sentry_sdk.get_client()
    if not client.is_active():
        return False
    current = client.options.get("before_send")
    if not getattr(current, _SCRUBBER_MARK, False):
        from include.mlpipeline.core.settings import get_settings

        client.options["before_send"] = make_before_send(known_secrets(get_settings()), _resolve_hook(current))
    return True
