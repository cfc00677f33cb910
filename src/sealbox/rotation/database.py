"""What the ``postgres`` and ``mysql`` rotators share: their options, the credential a
secret holds, and the two strategies. Each database's SQL is in its own module
(:mod:`sealbox.upstream.pg_roles`, :mod:`sealbox.upstream.mysql_accounts`).

Options (checked when a secret is configured; InvalidInput names the option):

``admin``
    Path (``project/env/NAME``) of the secret holding the admin login as a URL
    (``postgresql://admin:pw@db:5432/app``); read through the rotation, as its caller.
``username``
    The role (account) whose password rotates.
``strategy``
    ``single`` (default): the role's password changes at ``set``; logins with the old one
    fail from then on. ``alternating``: two roles, ``username`` and ``clone``, take turns:
    ``set`` changes the password of the one not in use, so the current credential keeps
    working until the next rotation.
``clone``
    The second role of ``alternating`` (default ``<username>_clone``); created by the
    first rotation that needs it.
``format``
    What the secret's value is: ``password`` (single only), ``url`` (default for
    alternating: the username changes) or ``json`` (AWS Secrets Manager's keys:
    ``engine``, ``host``, ``port``, ``dbname``, ``username``, ``password``).
``length``, ``alphabet``
    The new password: 16 to 128 characters (default 32) of ``alnum`` (default), ``hex``,
    ``base64url`` or ``symbols`` (as the ``random`` rotator's).
``host``, ``port``, ``database``
    Where applications connect, written into a ``url``/``json`` value and used by
    ``test``, when that is not the admin URL's (a pooler, a replica's name, another
    database); default: the admin URL's.
``timeout``
    Seconds to wait for a connection or a lock (1 to 60, default 5).

``single`` cannot restore a password it never knew: ``undo`` needs the current value,
and a rehearsal of a secret without one is refused at ``set``. ``alternating``'s
``undo`` leaves the current login untouched and gives the login that took the pending
password the previous value's password back (``ctx.previous``, when it names that login),
so the cancelled pending credential stops working and the previous one works again; with
no previous value (the first rotation, or it was archived or revoked) that login gets a
random password nobody keeps.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from sealbox.errors import InvalidInput, NotFound, RotationFailed, UpstreamError
from sealbox.model import SecretRef, SecretValue
from sealbox.rotation.interface import RotationContext
from sealbox.rotation.random import ALPHABETS
from sealbox.upstream.endpoint import Endpoint

STRATEGIES = ("single", "alternating")
FORMATS = ("password", "url", "json")
MIN_LENGTH, MAX_LENGTH, DEFAULT_LENGTH = 16, 128, 32
COMMON_OPTIONS = frozenset(
    {"admin", "username", "strategy", "clone", "format", "length", "alphabet"}
    | {"host", "port", "database", "timeout"}
)
#: ``ctx.state`` key: the login that takes the pending password (alternating).
PENDING_USER = "pending_user"
#: ``ctx.state`` key: ``set`` got as far as asking the server for a change (so ``undo``
#: of a set refused before it, a failed rehearsal's, knows there is nothing to take back).
SET_BEGUN = "set_begun"


@dataclass(frozen=True)
class Options:
    """A secret's options for a database rotator, validated."""

    admin: str
    username: str
    strategy: str
    clone: str
    format: str
    length: int
    alphabet: str
    host: str | None
    port: int | None
    database: str | None
    timeout: float
    extra: Mapping[str, str]

    @property
    def alternating(self) -> bool:
        return self.strategy == "alternating"


@dataclass(frozen=True)
class Credential:
    """A login as a secret holds it (``user`` is None for a bare password)."""

    user: str | None
    password: SecretValue


def check_name(option: str, value: str, most: int, *, in_bytes: bool = True) -> str:
    """A role, account or database name: any text a quoted identifier can hold, but no
    control characters, no space at either end (MySQL ignores trailing spaces in names)
    and within the server's length (PostgreSQL counts bytes, and silently truncates a
    longer name, which could then be another role's; MySQL counts characters)."""
    if not value:
        raise InvalidInput(f"option {option} must not be empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in value) or value != value.strip():
        raise InvalidInput(
            f"option {option} must have no control characters and no space at either end"
        )
    if (len(value.encode()) if in_bytes else len(value)) > most:
        unit = "bytes" if in_bytes else "characters"
        raise InvalidInput(f"option {option} must be at most {most} {unit}")
    return value


def _int(options: Mapping[str, str], key: str, low: int, high: int, default: int) -> int:
    raw = options.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"option {key} must be a whole number") from None
    if not low <= value <= high:
        raise InvalidInput(f"option {key} must be {low} to {high}")
    return value


class DatabaseRotator:
    """The strategies over one kind of database; a subclass supplies its SQL."""

    name: ClassVar[str]
    #: ``engine`` in a json value (AWS's key).
    engine: ClassVar[str]
    #: The longest role name the server keeps, in bytes (else characters).
    max_name: ClassVar[int]
    name_in_bytes: ClassVar[bool] = True
    #: Options of this database only (MySQL's ``account_host``).
    own_options: ClassVar[frozenset[str]] = frozenset()

    # -- what a subclass supplies ------------------------------------------------------

    def endpoint(self, value: SecretValue, *, what: str) -> Endpoint:
        """The endpoint a URL secret of this database names."""
        raise NotImplementedError

    def check_own(self, options: Mapping[str, str]) -> dict[str, str]:
        """This database's own options, validated, with their defaults."""
        return {}

    def user_exists(self, admin: Endpoint, user: str, opts: Options) -> bool:
        raise NotImplementedError

    def set_password(self, admin: Endpoint, user: str, pw: SecretValue, opts: Options) -> None:
        """Change an existing login's password (UpstreamError if it does not exist)."""
        raise NotImplementedError

    def prepare_clone(self, admin: Endpoint, pw: SecretValue, opts: Options) -> str:
        """Make the clone a login with ``pw`` and the original's privileges; a note."""
        raise NotImplementedError

    def sync_clone(self, admin: Endpoint, opts: Options) -> str | None:
        """After the original took the new password: bring the (current) clone's
        privileges up to the original's without revoking any; a note, if any."""
        return None

    def login(self, ep: Endpoint, opts: Options) -> str:
        """Log in as ``ep`` (UpstreamError if refused); the user the session acts as."""
        raise NotImplementedError

    def clone_problems(self, admin: Endpoint, opts: Options) -> list[str]:
        """Why the clone would not act exactly as the original (empty: it does)."""
        raise NotImplementedError

    def acts_as(self, user: str, opts: Options) -> str:
        """The user a session of ``user`` should act as (``login``'s answer)."""
        return user

    # -- options -----------------------------------------------------------------------

    def options(self, options: Mapping[str, str]) -> Options:
        """The options, validated (InvalidInput naming the option)."""
        unknown = sorted(set(options) - COMMON_OPTIONS - self.own_options)
        if unknown:
            raise InvalidInput(
                f"the {self.name} rotator has no option {', '.join(unknown)} (it takes"
                f" {', '.join(sorted(COMMON_OPTIONS | self.own_options))})"
            )
        admin = options.get("admin")
        if not admin:
            raise InvalidInput(
                f"option admin is required: the path of the secret holding the {self.name}"
                " admin URL (project/env/NAME)"
            )
        try:
            SecretRef.parse(admin)
        except InvalidInput:
            raise InvalidInput(
                "option admin must be a secret path project/env/NAME"
                " (the secret holding the admin URL, not the URL)"
            ) from None
        if "username" not in options:
            raise InvalidInput("option username is required: the role whose password rotates")
        username = self._name("username", options["username"])
        strategy = options.get("strategy", "single")
        if strategy not in STRATEGIES:
            raise InvalidInput(f"option strategy must be {' or '.join(STRATEGIES)}")
        if "clone" in options and strategy != "alternating":
            raise InvalidInput("option clone needs strategy=alternating")
        clone = options.get("clone", f"{username}_clone")
        if strategy == "alternating":
            self._name("clone", clone)
        if clone == username:
            raise InvalidInput("option clone must differ from username")
        fmt = options.get("format", "url" if strategy == "alternating" else "password")
        if fmt not in FORMATS:
            raise InvalidInput(f"option format must be one of {', '.join(FORMATS)}")
        if strategy == "alternating" and fmt == "password":
            raise InvalidInput(
                "option format must be url or json with strategy=alternating"
                " (the username changes on each rotation)"
            )
        alphabet = options.get("alphabet", "alnum")
        if alphabet not in ALPHABETS:
            raise InvalidInput(f"option alphabet must be one of {', '.join(ALPHABETS)}")
        host = options.get("host")
        if host is not None and (
            not host or len(host) > 253 or not all(c.isalnum() or c in "-._" for c in host)
        ):
            raise InvalidInput("option host must be a host name or an IPv4 address")
        database = options.get("database")
        if database is not None:
            self._name("database", database)
        return Options(
            admin=admin,
            username=username,
            strategy=strategy,
            clone=clone,
            format=fmt,
            length=_int(options, "length", MIN_LENGTH, MAX_LENGTH, DEFAULT_LENGTH),
            alphabet=alphabet,
            host=host,
            port=_int(options, "port", 1, 65535, 0) or None,
            database=database,
            timeout=float(_int(options, "timeout", 1, 60, 5)),
            extra=self.check_own(options),
        )

    def _name(self, option: str, value: str) -> str:
        return check_name(option, value, self.max_name, in_bytes=self.name_in_bytes)

    # -- values ------------------------------------------------------------------------

    def _admin(self, ctx: RotationContext, opts: Options) -> Endpoint:
        """The admin login. A secret that is its own admin (the admin's password rotates)
        logs in with whichever of current and pending the server takes right now."""
        if opts.admin == ctx.ref.path:
            candidates = [v for v in (ctx.current, _pending_or_none(ctx)) if v is not None]
            first: UpstreamError | None = None
            for value in candidates:
                ep = self.endpoint(value, what=f"the value of {ctx.ref} (its own admin)")
                try:
                    self.login(ep, opts)
                    return ep
                except UpstreamError as exc:
                    first = first or exc
            raise first or RotationFailed(f"{ctx.ref} is its own admin and has no value yet")
        try:
            value = ctx.secret(opts.admin)
        except NotFound:
            raise NotFound(
                f"the admin secret {opts.admin} of {ctx.ref}'s {self.name} rotator does not exist",
                hint=f"store the admin URL there, or point option admin at the secret that"
                f" holds it ({self.name}://user:password@host:port/database)",
            ) from None
        return self.endpoint(value, what=f"the admin secret {opts.admin}")

    def _app(self, admin: Endpoint, opts: Options) -> Endpoint:
        """Where applications connect: the admin's server unless options say otherwise."""
        return admin._replace(
            host=opts.host or admin.host,
            port=opts.port or admin.port,
            database=admin.database if opts.database is None else opts.database,
        )

    def _value(self, app: Endpoint, opts: Options) -> SecretValue:
        if opts.format == "password":
            return app.password
        if opts.format == "url":
            return app.url()
        return SecretValue(
            json.dumps(
                {
                    "engine": self.engine,
                    "host": app.host,
                    "port": app.port,
                    "dbname": app.database,
                    "username": app.user,
                    "password": app.password.reveal(),
                },
                sort_keys=True,
            )
        )

    def _credential(self, value: SecretValue, opts: Options, what: str) -> Credential:
        """The login a value holds; RotationFailed (never echoing it) if it is not one."""
        if opts.format == "password":
            # NOTE: a URL or JSON stored while format says password would become the
            # role's password at undo: refuse it rather than lock the application out.
            text = value.reveal().lstrip()
            if "://" in text.split("@", 1)[0] or text.startswith("{"):
                raise RotationFailed(
                    f"{what} looks like a URL or JSON, not a bare password"
                    " (option format=password; set format=url or json)"
                )
            return Credential(None, value)
        if opts.format == "url":
            try:
                ep = self.endpoint(value, what=what)
            except InvalidInput as exc:
                raise RotationFailed(f"{exc.message} (option format=url)") from None
            return Credential(ep.user, ep.password)
        try:
            doc = json.loads(value.reveal())
        except ValueError:
            doc = None
        if (
            not isinstance(doc, dict)
            or not isinstance(doc.get("username"), str)
            or not isinstance(doc.get("password"), str)
        ):
            raise RotationFailed(
                f"{what} is not a JSON object with a username and a password (option format=json)"
            )
        return Credential(doc["username"], SecretValue(doc["password"]))

    def _current_user(self, ctx: RotationContext, opts: Options) -> str | None:
        if ctx.current is None:
            return None
        user = self._credential(ctx.current, opts, f"the current value of {ctx.ref}").user
        if user not in (opts.username, opts.clone):
            raise RotationFailed(
                f"the current value of {ctx.ref} logs in as {user!r}, neither {opts.username!r}"
                f" nor {opts.clone!r} (options username and clone)"
            )
        return user

    def _pending(self, ctx: RotationContext, opts: Options) -> Credential:
        """The pending login, checked against the options: a value stored by hand in
        between, or options changed mid-rotation, must not change another role."""
        cred = self._credential(ctx.pending, opts, f"the pending value of {ctx.ref}")
        user = cred.user if cred.user is not None else opts.username
        if not opts.alternating and user != opts.username:
            raise RotationFailed(
                f"the pending value of {ctx.ref} logs in as {user!r}, not {opts.username!r}"
            )
        if opts.alternating:
            if user not in (opts.username, opts.clone):
                raise RotationFailed(
                    f"the pending value of {ctx.ref} logs in as {user!r}, neither"
                    f" {opts.username!r} nor {opts.clone!r}"
                )
            if user == self._current_user(ctx, opts):
                raise RotationFailed(
                    f"the pending value of {ctx.ref} logs in as {user!r}, the current login:"
                    " alternating users must take turns"
                )
        return Credential(user, cred.password)

    # -- the steps ---------------------------------------------------------------------

    def check(self, options: Mapping[str, str]) -> None:
        self.options(options)

    def create(self, ctx: RotationContext) -> SecretValue:
        opts = self.options(ctx.options)
        user = opts.username
        if opts.alternating:
            # NOTE: derived from the current value, not remembered: a create retried after
            # a crash picks the same login. The first rotation takes the clone, leaving
            # the original (which applications may use already) as it is.
            user = opts.clone if self._current_user(ctx, opts) != opts.clone else opts.username
            ctx.state[PENDING_USER] = user
        chars = ALPHABETS[opts.alphabet]
        password = SecretValue("".join(secrets.choice(chars) for _ in range(opts.length)))
        if opts.format == "password":
            return password
        app = self._app(self._admin(ctx, opts), opts)
        return self._value(app.login(user, password), opts)

    def set(self, ctx: RotationContext) -> None:
        opts = self.options(ctx.options)
        cred = self._pending(ctx, opts)
        assert cred.user is not None
        if not opts.alternating and ctx.dry_run and ctx.current is None:
            raise RotationFailed(
                f"a rehearsal of {ctx.ref} would change {opts.username!r}'s password and could"
                " not put it back: the secret has no current value",
                hint="store the role's password as the secret's value first",
            )
        admin = self._admin(ctx, opts)
        ctx.state[SET_BEGUN] = "yes"
        if opts.alternating and cred.user == opts.clone:
            ctx.note(self.prepare_clone(admin, cred.password, opts))
            return
        self.set_password(admin, cred.user, cred.password, opts)
        ctx.note(f"the password of {cred.user!r} changed on {admin.host}:{admin.port}")
        if opts.alternating:
            note = self.sync_clone(admin, opts)
            if note:
                ctx.note(note)

    def test(self, ctx: RotationContext) -> None:
        opts = self.options(ctx.options)
        cred = self._pending(ctx, opts)
        assert cred.user is not None
        # The admin logging in first tells a server that is down (UpstreamError: retry)
        # from one that refuses the pending password (RotationFailed).
        admin = self._admin(ctx, opts)
        self.login(admin, opts)
        app = self._app(admin, opts).login(cred.user, cred.password)
        try:
            acting = self.login(app, opts)
        except UpstreamError as exc:
            raise RotationFailed(
                f"the pending credential of {ctx.ref} does not log in: {exc.message}"
            ) from None
        if opts.alternating:
            expected = self.acts_as(cred.user, opts)
            if acting != expected:
                raise RotationFailed(
                    f"the pending login {cred.user!r} of {ctx.ref} acts as {acting!r},"
                    f" not {expected!r}"
                )
            problems = self.clone_problems(admin, opts)
            if problems:
                raise RotationFailed(
                    f"the clone of {opts.username!r} for {ctx.ref} differs from it: "
                    + "; ".join(problems)
                )
        ctx.note(f"{cred.user!r} logs in to {app.host}:{app.port} with the pending password")

    def finish(self, ctx: RotationContext) -> None:
        """Nothing to retire: single's old password stopped at ``set``; alternating's
        previous login works until the next rotation changes its password."""

    def undo(self, ctx: RotationContext) -> None:
        opts = self.options(ctx.options)
        pending = _pending_or_none(ctx)
        if not opts.alternating:
            if ctx.current is None and not ctx.state.get(SET_BEGUN):
                ctx.note("nothing to put back: set changed nothing")
                return
            if ctx.current is None:
                raise RotationFailed(
                    f"cannot put back the password of {opts.username!r} for {ctx.ref}: the"
                    " secret has no current value",
                    hint="store the role's password as the secret's value",
                )
            cred = self._credential(ctx.current, opts, f"the current value of {ctx.ref}")
            if cred.user not in (None, opts.username):
                raise RotationFailed(
                    f"the current value of {ctx.ref} logs in as {cred.user!r}, not"
                    f" {opts.username!r}"
                )
            admin = self._admin(ctx, opts)
            self.set_password(admin, opts.username, cred.password, opts)
            ctx.note(f"the password of {opts.username!r} is the current value's again")
            return
        if pending is None:
            return
        user = self._pending(ctx, opts).user
        assert user is not None
        admin = self._admin(ctx, opts)
        if not self.user_exists(admin, user, opts):
            return
        back = self._previous_password(ctx, opts, user)
        if back is not None:
            # The idle login took the pending password over the previous version's:
            # give that back, so holders of the previous value (the grace window) keep
            # working as if the rotation had never run.
            self.set_password(admin, user, back, opts)
            ctx.note(
                f"the password of {user!r} is the previous value's again; the current login"
                " is untouched"
            )
            return
        chars = ALPHABETS["alnum"]
        throwaway = SecretValue("".join(secrets.choice(chars) for _ in range(48)))
        self.set_password(admin, user, throwaway, opts)
        ctx.note(
            f"{user!r} no longer takes the pending password (it has a random one nobody"
            " keeps: no previous value names it); the current login is untouched"
        )

    def _previous_password(
        self, ctx: RotationContext, opts: Options, user: str
    ) -> SecretValue | None:
        """The previous value's password, when that value is a login of ``user`` (the
        idle one of alternating users); None otherwise (none, archived, revoked, another
        login, or not a value of this format)."""
        previous = ctx.previous
        if previous is None:
            return None
        try:
            cred = self._credential(previous, opts, f"the previous value of {ctx.ref}")
        except RotationFailed:
            return None
        return cred.password if cred.user == user else None


def _pending_or_none(ctx: RotationContext) -> SecretValue | None:
    try:
        return ctx.pending
    except InvalidInput:
        return None
