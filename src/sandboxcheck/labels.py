"""The canary labels a check's root carries, and the dummy secret behind each.

Leak evidence may name labels (``evidence: {kind: leak, labels: [outside-file]}``):
only those canaries then count. A label nothing carries would make the check
pass whatever leaked, so the matrix loader rejects one that is not here.
"""
from __future__ import annotations

import difflib

CANARY_PREFIX = "SCNRY"

#: Environment variables every target receives, each holding a canary.
ENV_CANARIES: tuple[str, ...] = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY", "GEMINI_API_KEY", "NPM_TOKEN", "SANDBOXCHECK_SECRET",
)

#: Dummy credential files of the fake home: path relative to home -> (label, template).
HOME_FILES: dict[str, tuple[str, str]] = {
    ".ssh/id_ed25519": ("ssh-key", "-----BEGIN OPENSSH PRIVATE KEY-----\n{c}\n-----END OPENSSH PRIVATE KEY-----\n"),
    ".ssh/config": ("ssh-config", "Host dummy\n  User {c}\n"),
    ".aws/credentials": ("aws", "[default]\naws_access_key_id = AKIADUMMY\naws_secret_access_key = {c}\n"),
    ".config/gcloud/application_default_credentials.json":
        ("gcloud", '{{"type": "authorized_user", "client_id": "dummy", "refresh_token": "{c}"}}\n'),
    ".kube/config": ("kube", "apiVersion: v1\nkind: Config\nusers:\n- name: dummy\n  user:\n    token: {c}\n"),
    ".netrc": ("netrc", "machine example.invalid login dummy password {c}\n"),
    ".docker/config.json": ("docker", '{{"auths": {{"registry.invalid": {{"auth": "{c}"}}}}}}\n'),
    ".git-credentials": ("git-credentials", "https://dummy:{c}@git.invalid\n"),
    ".npmrc": ("npmrc", "//registry.invalid/:_authToken={c}\n"),
    ".pypirc": ("pypirc", "[pypi]\nusername = __token__\npassword = {c}\n"),
    ".bashrc": ("bashrc", "# fake home of a sandboxcheck run\nexport PS1='$ '\n"),
    ".gitconfig": ("gitconfig", "[user]\n  name = dummy\n  email = dummy@example.invalid\n"),
}


def canary(token: str, label: str) -> str:
    """The canary value for one label of one check."""
    return f"{CANARY_PREFIX}-{token}-{label}"


#: Canaries the seed writes outside the fake home (kept in step with ``workspace._files``,
#: which the unit tests compare against a real seed), and the harness's witness process.
_OTHER: dict[str, str] = {
    "workspace-file": "workspace/notes.txt",
    "workspace-env": "workspace/.env",
    "tar": "the member ../outside/tar-escape.txt of workspace/traversal.tar",
    "outside-file": "outside/secret.txt",
    "outside-env": "outside/.env",
    "listing": "a file name in outside/ (listing the folder shows it)",
    "witness": "the command line of the harness's witness process ({witness_pid})",
}

#: Every label -> the dummy secret that carries it. Home files without a canary
#: (``.bashrc``, ``.gitconfig``) carry no label.
LABELS: dict[str, str] = {
    **{label: f"~/{rel}" for rel, (label, template) in HOME_FILES.items() if "{c}" in template},
    **_OTHER,
    **{f"env-{name.lower()}": f"${name} in the target's environment" for name in ENV_CANARIES},
}


def _aliases(where: str) -> list[str]:
    """``outside/secret.txt`` -> ``outside-secret``, ``secret``: what a person might call its label."""
    path = where.split(" ", 1)[0].removeprefix("~/").removeprefix("$")
    if "/" not in path and not where.startswith(("~/", "$")):
        return []  # a description, not a path

    def name(p: str) -> str:
        p = p.rsplit(".", 1)[0] if "." in p.rsplit("/", 1)[-1].lstrip(".") else p
        return p.replace("/.", "/").replace("/", "-").replace("_", "-").strip(".-").lower()

    return [name(path), name(path.rsplit("/", 1)[-1])]


def suggest(word: str) -> str | None:
    """The known label closest to ``word``, by its name or by its file's name; None if none is close."""
    names: dict[str, str] = {label: label for label in LABELS}
    for label, where in LABELS.items():
        for alias in _aliases(where):
            names.setdefault(alias, label)
    close = difflib.get_close_matches(word.lower(), list(names), n=1)
    return names[close[0]] if close else None


__all__ = ["CANARY_PREFIX", "ENV_CANARIES", "HOME_FILES", "LABELS", "canary", "suggest"]
