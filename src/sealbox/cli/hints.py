"""The CLI's own wording of hints: the commands and flags to use.

The core's errors say what is wrong and what to do in terms every caller understands (an
HTTP client reads the same message); where a CLI command or flag is the answer, the error
carries a ``hint_key`` and the CLI words the hint here, filled from the error's
``hint_args``.
"""

from __future__ import annotations

CLI_HINTS: dict[str, str] = {
    "unseal": "unseal it with `sealbox operator unseal` (or `bao operator unseal` against a"
    " server), one share at a time",
    "kms_add": "add it with `sealbox kms add NAME --kind KIND`",
    "kms_status": "run `sealbox kms status` to see what each key provider can open",
    "kms_rotate_resume": "run `sealbox kms rotate --resume` to finish it",
    "kms_rewrap_bad": "restore that version from a backup (or `sealbox secret purge` the secret),"
    " then run `sealbox kms rotate --resume`",
    "kms_add_first": "add another key provider first with `sealbox kms add`, then remove this one",
    "kms_per_version_rewrap": (
        "move those versions first with `sealbox kms per-version --migrate-to PROVIDER`"
        " (or `sealbox kms migrate`), then remove this one"
    ),
    "create_project": "create it with `sealbox project create {project}`",
    "create_env": "create it with `sealbox env create {env} --project {project}`",
    "undelete_secret": "restore it with `sealbox secret undelete`",
    "rotation_configure": (
        "configure it with `sealbox rotation configure {path} --method random` (or another rotator)"
    ),
    "rotation_open": (
        "run `sealbox rotation resume {rotation}` or `sealbox rotation cancel {rotation}`"
    ),
    "rotation_resume": "run `sealbox rotation resume {rotation}`",
    "rotation_rotate_first": "rotate it first with `sealbox rotate {path}`",
    "incident_configure": "configure its rotation with `sealbox rotation configure {path}"
    " --method random` (or its rotator), or write a new value with `sealbox secret set {path}`,"
    " then run `sealbox incident {path} --rotate` again",
    "incident_rotation": "see `sealbox rotation status`; `sealbox rotation resume {rotation}` or"
    " `sealbox rotation cancel {rotation}`, then run `sealbox incident {path} --rotate` again",
    "init_vault": "create one with `sealbox init`",
    "init_vault_or_home": "create one with `sealbox init` (or set SEALBOX_HOME)",
    "if_version": "--if-version takes 0 (not yet created) or a version number",
    "version_needs_secret": "--version needs a secret path",
    "accept_rejected": "give a file name `sealbox audit verify` prints after --accept-rejected",
    "force_admin_loss": (
        "pass --force if you mean it; an admin is recovered with the master key: "
        "`sealbox identity recover-admin NAME` on the vault's host"
    ),
    "name_identity": "name one with --identity",
    "scan_git_path": "pass the path of a git work tree to --git",
    "scan_rule_ids": "see the rule ids in `sealbox scan --format json` output or rules.toml",
    "scan_rules_file": "reinstall sealbox, or pass --rules FILE",
    "login": "run `sealbox login --addr URL`, or set SEALBOX_TOKEN",
    "login_addr": "run `sealbox login --addr {addr}`, or set SEALBOX_TOKEN",
    "login_again": "delete it and run `sealbox login` again",
    "keyring_refused": "no keyring backend here? use --key-file or a passphrase instead",
    "unlock": "run `eval $(sealbox unlock)`, or set SEALBOX_PASSPHRASE for non-interactive use",
    "unlock_again": "run `eval $(sealbox unlock)` again",
    "audit_verify_file": "--file verifies a local JSONL file: run it on the server's host",
    "accept_rejected_remote": "run `sealbox audit verify --accept-rejected FILE` there",
    "run_command": "use `sealbox run -- COMMAND [ARGS…]`",
    "mount_spec": "--mount takes a file name (placed on tmpfs) or an absolute path",
    "replace_cred_role": "pass --replace to redefine it, or `sealbox creds role delete` it first",
    "revoke_role_leases": "revoke them with `sealbox lease revoke --prefix {role}`",
    "lease_quota": (
        "revoke unused leases (`sealbox lease list --role {role}`), or raise --max-leases"
        " with `sealbox creds role create {role} --replace …`"
    ),
    "new_credentials": "ask for new credentials: `sealbox creds {role}`",
    "renew_less": "renew by less (`--increment`, at most {left}), or ask for new credentials",
    "lease_list_role": "pass --role project/env/role",
    "lease_force": (
        "if its user is gone (or its database for good): `sealbox lease revoke {lease} --force`"
    ),
    "audit_sinks": (
        "free disk space or fix the audit sinks ([audit] sinks in config.toml); "
        "--audit-fail-open exists for development only"
    ),
}
