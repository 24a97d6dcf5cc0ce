"""Security checks run by `make security` (CI job `security`; `make test` runs secrets and lint).

    python scripts/security.py secrets   # detect-secrets over every tracked file AND every commit in history
    python scripts/security.py lint      # bandit over include/ and dags/ (config in pyproject.toml)
    python scripts/security.py audit     # pip-audit of requirements.lock

Secrets: the test suite holds fake credentials on purpose (a moto key, API keys of test servers).
They are recorded, hashed, in `.secrets.baseline`; anything else detect-secrets finds, in the tree
or in any commit's added lines, fails the check. After reviewing a new finding that is a fake,
refresh the baseline: `python scripts/security.py secrets --update-baseline`.

Audit: pip-audit asks a vulnerability service (PyPI's JSON API or OSV) about every pinned package.
Where that service cannot be reached (this project's offline build machines), the check says so
and passes; on GitHub Actions it runs for real and fails on any known vulnerability.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / ".secrets.baseline"
BIN = Path(sys.executable).parent


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True).stdout
    # The baseline holds hashes that look like secrets to the scanner; it is the record, not a finding.
    return [line for line in out.splitlines() if line and line != BASELINE.name and (ROOT / line).is_file()]


def scan_tree() -> dict:
    result = subprocess.run(
        [str(BIN / "detect-secrets"), "scan", *tracked_files()], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def known_hashes() -> set[str]:
    """Hashes of reviewed findings: the tree's (``results``) and past commits' (``reviewed_history``)."""
    if not BASELINE.exists():
        return set()
    baseline = json.loads(BASELINE.read_text())
    tree = {secret["hashed_secret"] for found in baseline["results"].values() for secret in found}
    return tree | {finding["hashed_secret"] for finding in baseline.get("reviewed_history", [])}


def scan_history(allowed: set[str]) -> list[dict]:
    """Every commit's added lines, scanned with the same detectors; returns findings not in the baseline."""
    from detect_secrets.core.secrets_collection import SecretsCollection
    from detect_secrets.settings import default_settings

    # Branches, tags and remotes: what gets pushed. Not --all, which takes in local stashes (scratch, and
    # their merge commits' diffs do not parse).
    refs = ["--branches", "--tags", "--remotes"]
    commits = subprocess.run(
        ["git", "-C", str(ROOT), "rev-list", *refs], capture_output=True, text=True, check=True
    ).stdout.split()
    findings = []
    with default_settings():
        for commit in commits:
            diff = subprocess.run(
                ["git", "-C", str(ROOT), "show", "--format=", "--unified=0", "--no-color", commit, "--", ".",
                 f":!{BASELINE.name}"],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip
            if not diff.strip():
                continue
            collection = SecretsCollection()
            try:
                collection.scan_diff(diff)
            except Exception as error:  # an unparsable diff (binary files) is reported, not ignored
                findings.append({"commit": commit[:10], "error": f"could not scan the diff: {error}"})
                continue
            for filename, secret in collection:
                if secret.secret_hash not in allowed:
                    findings.append({
                        "commit": commit[:10], "filename": filename, "line_number": secret.line_number,
                        "type": secret.type, "hashed_secret": secret.secret_hash,
                    })  # fmt: skip
    return findings


def describe(finding: dict) -> str:
    if "error" in finding:
        return f"{finding['commit']}: {finding['error']}"
    return f"{finding['commit']} {finding['filename']}:{finding['line_number']} {finding['type']}"


def check_secrets(update_baseline: bool) -> int:
    current = scan_tree()
    if update_baseline:
        # Lines that only live in history (since changed or deleted) are reviewed too; the tree's
        # findings are already allowed, so the history scan returns just those.
        tree = {secret["hashed_secret"] for found in current["results"].values() for secret in found}
        current["reviewed_history"] = [f for f in scan_history(tree) if "error" not in f]
        BASELINE.write_text(json.dumps(current, indent=2) + "\n")
        print(f"wrote {BASELINE.name}: {sum(len(v) for v in current['results'].values())} reviewed findings in the "
              f"tree, {len(current['reviewed_history'])} in history only")  # fmt: skip
        return 0
    allowed = known_hashes()
    new = [
        f"{filename}:{secret['line_number']} {secret['type']}"
        for filename, secrets in current["results"].items()
        for secret in secrets
        if secret["hashed_secret"] not in allowed
    ]
    history = scan_history(allowed)
    for finding in new:
        print(f"secret in the tree: {finding}")
    for finding in history:
        print(f"secret in history: {describe(finding)}")
    if new or history:
        print("Remove it (and rotate it if it was real); if it is a test fake, review it and --update-baseline.")
        return 1
    print(f"secrets: no unreviewed secret in {len(tracked_files())} files and the whole history")
    return 0


def check_lint() -> int:
    result = subprocess.run([str(BIN / "bandit"), "-q", "-r", "include", "dags", "-c", "pyproject.toml"], cwd=ROOT,
                            check=False)  # fmt: skip
    if result.returncode == 0:
        print("bandit: no issues in include/ and dags/")
    return result.returncode


def check_audit() -> int:
    result = subprocess.run(
        [str(BIN / "pip-audit"), "-r", "requirements.lock", "--no-deps", "--disable-pip", "--format", "json",
         "--progress-spinner", "off", "--timeout", "20"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        print(result.stderr[-2000:])
        return result.returncode or 1
    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    for dependency in vulnerable:
        ids = ", ".join(v["id"] for v in dependency["vulns"])
        print(f"vulnerable: {dependency['name']}=={dependency['version']}: {ids}")
    if vulnerable:
        return 1
    if not audited:
        print(
            f"audit: the vulnerability service could not be reached for any of {len(dependencies)} packages "
            "(offline machine); CI on GitHub runs this audit for real"
        )
        return 0
    skipped = len(dependencies) - len(audited)
    print(f"audit: {len(audited)} packages audited, no known vulnerability ({skipped} skipped)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("check", choices=["secrets", "lint", "audit", "all"])
    parser.add_argument("--update-baseline", action="store_true", help="record the current findings as reviewed")
    args = parser.parse_args()
    checks = {"secrets": lambda: check_secrets(args.update_baseline), "lint": check_lint, "audit": check_audit}
    selected = list(checks) if args.check == "all" else [args.check]
    return max(checks[name]() for name in selected)


if __name__ == "__main__":
    sys.exit(main())
