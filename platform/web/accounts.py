"""User accounts, sessions, API tokens and failed-login throttling (the web app's own services).

Passwords are hashed with argon2id (``argon2-cffi``'s :class:`~argon2.PasswordHasher`, RFC 9106
defaults) and never stored or logged in clear. A session or API token is 32 random bytes
(:func:`secrets.token_urlsafe`) handed to the client once; the database keeps only its SHA-256,
so a copy of the database cannot be used to log in. Each browser session carries its own CSRF
token (:mod:`sabrkit.web.security` checks it on every POST).

Throttling: a user name that failed :attr:`WebSettings.max_failed_logins` times from one
address within :attr:`WebSettings.lockout_minutes` is locked for that address until the oldest
of those failures is ``lockout_minutes`` old; an address that failed
``max_failed_logins_per_address`` times (any user names) is locked the same way. While locked,
the password is not even checked. A successful login forgets the user's failures from that address.

Passwords must have :data:`MIN_PASSWORD_LENGTH` characters, not be blank, and reach zxcvbn score
:data:`MIN_PASSWORD_SCORE` (Wheeler, *zxcvbn: Low-Budget Password Strength Estimation*, USENIX
Security 2016; score 3 = "safely unguessable", about 10^8 guesses), judged against the user name too.
An admin's :func:`unlock` (and every password reset) forgets the account's failed logins.

Account changes are audited (``web_users`` is an audited table): who made them (``actor``) and why.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, desc, select

from sabrkit.db.database import Database
from sabrkit.errors import NotFoundError, ValidationError, format_problem
from sabrkit.web.errors import LoginError, LoginThrottledError
from sabrkit.web.roles import ROLES
from sabrkit.web.settings import WebSettings
from sabrkit.web.tables import LoginFailure, WebSession, WebUser

__all__ = [
    "CurrentUser",
    "UserSummary",
    "MIN_PASSWORD_LENGTH",
    "PASSWORD_PROFILES",
    "utcnow",
    "hash_password",
    "create_user",
    "set_password",
    "set_role",
    "set_active",
    "list_users",
    "authenticate",
    "open_session",
    "user_for_token",
    "close_session",
    "create_api_token",
    "lock_until",
    "check_password_strength",
    "unlock",
    "MIN_PASSWORD_SCORE",
]

logger = logging.getLogger(__name__)

MIN_PASSWORD_LENGTH = 10
#: Lowest zxcvbn score (0-4) accepted for a password.
MIN_PASSWORD_SCORE = 3
_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
_DUMMY_HASH: list[str] = []


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo (how the database stores times), to the second."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


#: argon2id parameter sets: ``default`` is RFC 9106's low-memory choice (t=3, m=64 MiB, p=4);
#: ``fast-insecure`` (t=1, m=8 KiB) exists for tests and throw-away demos only. Verifying a hash
#: uses the parameters stored in the hash itself, so either kind of account logs in as usual.
PASSWORD_PROFILES = ("default", "fast-insecure")


def _hasher(profile: str = "default"):
    from argon2 import PasswordHasher, profiles

    if profile not in PASSWORD_PROFILES:
        raise ValidationError(
            format_problem(
                f"password profile {profile!r}", "one of " + ", ".join(PASSWORD_PROFILES), "use 'default'"
            )
        )
    return PasswordHasher.from_parameters(
        profiles.RFC_9106_LOW_MEMORY if profile == "default" else profiles.CHEAPEST
    )


def check_password_strength(password: str, user_inputs: tuple[str, ...] = ()) -> None:
    """Refuse short, blank and guessable passwords (length rule, then zxcvbn).

    Raises
    ------
    ValidationError
        With ``field="password"``: the rule broken and zxcvbn's suggestion.
    """
    from zxcvbn import zxcvbn

    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(
            format_problem(
                f"a password of {len(password)} characters",
                f"passwords have at least {MIN_PASSWORD_LENGTH} characters",
                "choose a longer one (a pass phrase of several words works well)",
            ),
            field="password",
        )
    if not password.strip():
        raise ValidationError(
            format_problem(
                "a password of spaces only",
                "a password has visible characters",
                "choose a pass phrase of several words",
            ),
            field="password",
        )
    verdict = zxcvbn(password[:100], user_inputs=[u for u in user_inputs if u])
    if verdict["score"] < MIN_PASSWORD_SCORE:
        hint = " ".join(
            [verdict["feedback"].get("warning") or "", *verdict["feedback"].get("suggestions", [])]
        ).strip()
        raise ValidationError(
            format_problem(
                f"a password guessable in about 10^{verdict['guesses_log10']:.0f} tries (strength {verdict['score']} of 4)",
                f"passwords need strength {MIN_PASSWORD_SCORE} or more (zxcvbn)",
                (hint + " " if hint else "") + "a pass phrase of four or more unrelated words works well",
            ),
            field="password",
        )


def hash_password(password: str, *, profile: str = "default", user_inputs: tuple[str, ...] = ()) -> str:
    """The argon2id hash of ``password`` (after :func:`check_password_strength`)."""
    check_password_strength(password, user_inputs)
    return _hasher(profile).hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise ValidationError(
            format_problem(
                f"user name {username!r}",
                "2-64 characters: a letter, then letters, digits, _ . -",
                "e.g. jsmith or lab.tech1",
            )
        )
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(
            format_problem(f"role {role!r}", "one of " + ", ".join(ROLES), "pick a listed role")
        )
    return role


@dataclass(frozen=True)
class CurrentUser:
    """Who makes a request: account, role, and the session (or API token) it came with."""

    user_id: int
    username: str
    role: str
    display_name: str | None
    session_kind: str
    csrf_token: str
    session_id: int


@dataclass(frozen=True)
class UserSummary:
    """An account as the admin pages list it (never the hash)."""

    username: str
    display_name: str | None
    role: str
    active: bool
    created_at: datetime
    password_changed_at: datetime


def _user(session, username: str) -> WebUser:
    user = session.execute(
        select(WebUser).where(WebUser.username == username.strip().lower())
    ).scalar_one_or_none()
    if user is None:
        raise NotFoundError(
            format_problem(
                f"user {username!r}", "the account must exist", "list accounts with `sabrkit users list`"
            )
        )
    return user


def create_user(
    db: Database,
    username: str,
    password: str,
    role: str,
    *,
    display_name: str | None = None,
    actor: str,
    reason: str | None = None,
    password_profile: str = "default",
) -> None:
    """Create an active account (audited); ``password_profile`` as :data:`PASSWORD_PROFILES`.

    Raises
    ------
    ValidationError
        Bad user name, unknown role, short password, or the user name is taken.
    """
    name = _check_username(username)
    _check_role(role)
    hashed = hash_password(password, profile=password_profile, user_inputs=(name, display_name or ""))
    now = utcnow()
    with db.transaction(actor=actor, reason=reason or f"create account {name} ({role})") as session:
        if session.execute(select(WebUser.id).where(WebUser.username == name)).first() is not None:
            raise ValidationError(
                format_problem(
                    f"user name {name!r}",
                    "user names are unique",
                    "choose another, or reset that account's password",
                )
            )
        session.add(
            WebUser(
                username=name,
                display_name=display_name,
                role=role,
                password_hash=hashed,
                active=True,
                created_at=now,
                password_changed_at=now,
            )
        )
    logger.info("account %s (%s) created by %s", name, role, actor)


def set_password(db: Database, username: str, password: str, *, actor: str, reason: str) -> None:
    """Replace an account's password, end its sessions and forget its failed logins (audited; hash redacted)."""
    hashed = hash_password(password, user_inputs=(username,))
    with db.transaction(actor=actor, reason=reason) as session:
        user = _user(session, username)
        user.password_hash, user.password_changed_at = hashed, utcnow()
        session.execute(delete(WebSession).where(WebSession.user_id == user.id, WebSession.kind == "browser"))
        _forget_failures(session, user.username)


def _forget_failures(session, username: str) -> int:
    """Delete the failed logins of ``username`` and, for the addresses it failed from, theirs too."""
    addresses = select(LoginFailure.client_address).where(LoginFailure.username == username).distinct()
    found = session.execute(
        delete(LoginFailure).where(
            (LoginFailure.username == username) | LoginFailure.client_address.in_(addresses.scalar_subquery())
        )
    )
    return int(found.rowcount or 0)


def unlock(db: Database, username: str, *, actor: str, reason: str) -> int:
    """Lift a login lock: forget the account's failed logins (and those of the addresses it failed from).

    Returns the number of failed-login records removed (audited with ``actor`` and ``reason``).
    """
    with db.transaction(actor=actor, reason=reason) as session:
        removed = _forget_failures(session, _user(session, username).username)
    logger.info("login lock of %s lifted by %s (%d failures forgotten)", username, actor, removed)
    return removed


def set_role(db: Database, username: str, role: str, *, actor: str, reason: str) -> None:
    """Change an account's role (audited); its open sessions get the new role on their next request."""
    _check_role(role)
    with db.transaction(actor=actor, reason=reason) as session:
        _user(session, username).role = role


def set_active(db: Database, username: str, active: bool, *, actor: str, reason: str) -> None:
    """Activate or deactivate an account (audited); deactivating ends every session and token."""
    with db.transaction(actor=actor, reason=reason) as session:
        user = _user(session, username)
        user.active = active
        if not active:
            session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def list_users(db: Database) -> list[UserSummary]:
    """Every account, by user name."""
    with db.session() as session:
        return [
            UserSummary(u.username, u.display_name, u.role, u.active, u.created_at, u.password_changed_at)
            for u in session.scalars(select(WebUser).order_by(WebUser.username))
        ]


def lock_until(
    db: Database, username: str, client_address: str, settings: WebSettings, now: datetime | None = None
) -> datetime | None:
    """When the (user name, address) pair or the address unlocks (UTC), or None when not locked."""
    now = now or utcnow()
    window = timedelta(minutes=settings.lockout_minutes)
    name = username.strip().lower()[:64]
    locks = []
    with db.session() as session:
        for column, value, limit in (
            (LoginFailure.username, name, settings.max_failed_logins),
            (LoginFailure.client_address, client_address, settings.max_failed_logins_per_address),
        ):
            statement = select(LoginFailure.failed_at).where(
                column == value, LoginFailure.failed_at > now - window
            )
            if column is LoginFailure.username:
                statement = statement.where(LoginFailure.client_address == client_address)
            times = session.scalars(statement.order_by(desc(LoginFailure.failed_at)).limit(limit)).all()
            if len(times) >= limit:
                locks.append(times[-1] + window)
    return max(locks) if locks else None


def _record_failure(
    db: Database, name: str, client_address: str, now: datetime, settings: WebSettings
) -> None:
    with db.transaction(actor=name or "anonymous") as session:
        session.add(LoginFailure(username=name, client_address=client_address, failed_at=now))
        session.execute(delete(LoginFailure).where(LoginFailure.failed_at < now - timedelta(days=1)))


def authenticate(
    db: Database,
    username: str,
    password: str,
    client_address: str,
    settings: WebSettings,
    *,
    now: datetime | None = None,
) -> tuple[int, str]:
    """Check a login; returns ``(user_id, username)``.

    Raises
    ------
    LoginThrottledError
        Too many recent failures for this user name from this address (or from this address);
        the password was not checked.
    LoginError
        Unknown user, wrong password or deactivated account (one message for all three).
    """
    from argon2.exceptions import InvalidHashError, VerificationError

    now = now or utcnow()
    name = username.strip().lower()[:64]
    address = (client_address or "unknown")[:64]
    until = lock_until(db, name, address, settings, now)
    if until is not None:
        minutes = max(1, math.ceil((until - now).total_seconds() / 60))
        raise LoginThrottledError(
            format_problem(
                f"too many failed logins for {name!r} from this address",
                f"{settings.max_failed_logins} failures within {settings.lockout_minutes:g} minutes lock the login",
                f"wait {minutes} minute(s) (until {until:%H:%M} UTC) or ask an admin to reset the password",
            ),
            until=until,
        )
    with db.session() as session:
        found = session.execute(
            select(WebUser.id, WebUser.password_hash, WebUser.active).where(WebUser.username == name)
        ).first()
    hasher = _hasher()
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hasher.hash(secrets.token_urlsafe(16)))
    try:  # verify against a dummy hash for unknown users: same time either way
        hasher.verify(found.password_hash if found else _DUMMY_HASH[0], password)
        ok = found is not None and bool(found.active)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:
        _record_failure(db, name, address, now, settings)
        logger.info("failed login for %r from %s", name, address)
        raise LoginError(
            format_problem(
                "user name or password not recognised",
                "log in with an active account",
                "check the spelling and Caps Lock; an admin can reset the password",
            )
        )
    with db.transaction(actor=name) as session:
        session.execute(
            delete(LoginFailure).where(LoginFailure.username == name, LoginFailure.client_address == address)
        )
    assert found is not None  # ok is false for an unknown user
    return int(found.id), name


def open_session(
    db: Database,
    user_id: int,
    *,
    kind: str = "browser",
    lifetime: timedelta,
    client_address: str | None = None,
    label: str | None = None,
    actor: str | None = None,
) -> str:
    """Start a session (or API token) for an account; returns the token (shown once, stored hashed)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    with db.transaction(actor=actor) as session:
        session.execute(delete(WebSession).where(WebSession.user_id == user_id, WebSession.expires_at < now))
        session.add(
            WebSession(
                token_hash=_token_hash(token),
                user_id=user_id,
                kind=kind,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + lifetime,
                client_address=(client_address or "")[:64] or None,
                label=label,
            )
        )
    return token


def user_for_token(db: Database, token: str | None, *, kind: str | None = None) -> CurrentUser | None:
    """The active account a session or API token belongs to, or None (unknown, expired, deactivated)."""
    if not token or len(token) > 200:
        return None
    statement = (
        select(
            WebSession.id,
            WebSession.kind,
            WebSession.csrf_token,
            WebUser.id,
            WebUser.username,
            WebUser.role,
            WebUser.display_name,
        )
        .join(WebUser, WebUser.id == WebSession.user_id)
        .where(
            WebSession.token_hash == _token_hash(token),
            WebSession.expires_at > utcnow(),
            WebUser.active.is_(True),
        )
    )
    if kind is not None:
        statement = statement.where(WebSession.kind == kind)
    with db.session() as session:
        row = session.execute(statement).first()
    if row is None:
        return None
    session_id, session_kind, csrf, user_id, username, role, display_name = row
    return CurrentUser(user_id, username, role, display_name, session_kind, csrf, session_id)


def close_session(db: Database, token: str) -> None:
    """End a session (log out) or revoke an API token."""
    with db.transaction() as session:
        session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def create_api_token(db: Database, username: str, *, label: str, days: float, actor: str) -> str:
    """An API token for ``username`` (for instruments and scripts: ``Authorization: Bearer <token>``)."""
    with db.session() as session:
        user = _user(session, username)
        user_id, active = user.id, user.active
    if not active:
        raise ValidationError(
            format_problem(
                f"account {username!r} is deactivated",
                "tokens belong to active accounts",
                "activate the account first",
            )
        )
    token = open_session(db, user_id, kind="api", lifetime=timedelta(days=days), label=label, actor=actor)
    logger.info("API token %r created for %s by %s", label, username, actor)
    return token
