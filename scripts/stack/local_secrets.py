"""The secrets of a local stack (Fernet key, JWT secret, admin password, API key), made once and kept."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path


def load_or_create_secrets(path: Path) -> tuple[dict[str, str], bool]:
    """Secrets of a local stack, generated once and kept (git-ignored) so restarts reuse them.

    Returns:
        The secrets and whether they were created just now.
    """
    if path.exists():
        return json.loads(path.read_text()), False
    values = {
        "fernet_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "jwt_secret": secrets.token_urlsafe(32),
        "api_secret_key": secrets.token_urlsafe(32),
        "admin_password": secrets.token_urlsafe(12),
        "api_key": secrets.token_urlsafe(24),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=1))
    path.chmod(0o600)
    return values, True
