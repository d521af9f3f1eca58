"""Single sign-on with OpenID Connect: the authorization code flow with PKCE.

The protocol pieces come from maintained libraries: Authlib builds the authorization request
and the PKCE challenge (RFC 7636, S256), joserfc (Authlib's JOSE library) checks the ID token
(signature against the provider's published keys, issuer, audience, expiry, nonce). What is
ours is the bookkeeping around them:

- discovery (``ISSUER/.well-known/openid-configuration``) and the key set are fetched and kept
  for an hour; a token signed with a key we have not seen makes us fetch the keys again once
  (the provider rotated them);
- each sign-on under way is a row (:class:`~app.models.OidcLogin`): its ``state`` stored hashed,
  bound to the browser that started it (a cookie of its own), used once and for ten minutes
  at most, so a replayed or transplanted callback is refused;
- accounts are linked by issuer + subject (:class:`~app.models.OidcLink`). A first sign-on
  creates an account, or, when the address already has one, links only after the person
  proved that account's password. The provider's e-mail address is believed only when the
  provider says it verified it (``email_verified``).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.models import OidcLink, OidcLogin, User, utcnow
from app.services import accounts
from app.services.passwords import Passwords
from app.settings import Settings

LOGIN_MINUTES = 10
CACHE_SECONDS = 3600
LEEWAY_SECONDS = 60
# Asymmetric signatures only: "none" is no signature, and HS* would make the client secret a
# signing key.
SAFE_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                   "ES512", "EdDSA")
CALLBACK_PATH = "/auth/oidc/callback"


class OidcFailure(Exception):
    """The sign-on cannot go on; ``reason`` is a short code for the page and the log."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    auth_methods: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in (from a checked ID token)."""

    issuer: str
    subject: str
    email: str | None  # only when the provider verified it
    name: str


def redirect_uri(settings: Settings) -> str:
    return settings.resolved_base_url + CALLBACK_PATH


class Provider:
    """The configured provider: its discovery document and keys, cached, thread-safe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._metadata: tuple[float, Metadata] | None = None
        self._keys: tuple[float, KeySet] | None = None

    def _get_json(self, url: str) -> Any:
        try:
            response = httpx.get(url, timeout=self.settings.oidc_timeout_seconds)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise OidcFailure("provider_unavailable", f"{url}: {exc}") from exc

    def metadata(self) -> Metadata:
        with self._lock:
            if self._metadata is not None and time.monotonic() - self._metadata[0] < \
                    CACHE_SECONDS:
                return self._metadata[1]
        issuer = self.settings.oidc_issuer.rstrip("/")
        doc = self._get_json(f"{issuer}/.well-known/openid-configuration")
        if not isinstance(doc, dict) or doc.get("issuer", "").rstrip("/") != issuer:
            raise OidcFailure("provider_misconfigured", "discovery names another issuer")
        try:
            found = Metadata(
                issuer=doc["issuer"], authorization_endpoint=doc["authorization_endpoint"],
                token_endpoint=doc["token_endpoint"], jwks_uri=doc["jwks_uri"],
                algorithms=tuple(a for a in doc.get("id_token_signing_alg_values_supported",
                                                    ["RS256"]) if a in SAFE_ALGORITHMS),
                auth_methods=tuple(doc.get("token_endpoint_auth_methods_supported",
                                           ["client_secret_basic"])))
        except KeyError as exc:
            raise OidcFailure("provider_misconfigured", f"discovery lacks {exc}") from exc
        with self._lock:
            self._metadata = (time.monotonic(), found)
        return found

    def keys(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            if not refresh and self._keys is not None and \
                    time.monotonic() - self._keys[0] < CACHE_SECONDS:
                return self._keys[1]
        try:
            found = KeySet.import_key_set(self._get_json(self.metadata().jwks_uri))
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcFailure("provider_misconfigured", f"bad key set: {exc}") from exc
        with self._lock:
            self._keys = (time.monotonic(), found)
        return found

    def authorization_url(self, *, state: str, nonce: str, verifier: str) -> str:
        meta = self.metadata()
        return str(prepare_grant_uri(
            meta.authorization_endpoint, self.settings.oidc_client_id, "code",
            redirect_uri=redirect_uri(self.settings), scope=self.settings.oidc_scopes,
            state=state, nonce=nonce, code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256"))

    def exchange_code(self, code: str, verifier: str) -> str:
        """Redeem the authorization code (with the PKCE verifier); the raw ID token."""
        meta = self.metadata()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri(self.settings), "code_verifier": verifier}
        auth: tuple[str, str] | None = None
        if "client_secret_basic" in meta.auth_methods or not meta.auth_methods:
            auth = (self.settings.oidc_client_id, self.settings.oidc_client_secret)
        else:
            form.update(client_id=self.settings.oidc_client_id,
                        client_secret=self.settings.oidc_client_secret)
        try:
            response = httpx.post(meta.token_endpoint, data=form, auth=auth,
                                  timeout=self.settings.oidc_timeout_seconds,
                                  headers={"Accept": "application/json"})
            answer = response.json()
        except (httpx.HTTPError, json.JSONDecodeError) as exc:
            raise OidcFailure("provider_unavailable", str(exc)) from exc
        if response.status_code != 200 or not isinstance(answer, dict):
            raise OidcFailure("code_refused", str(answer.get("error", response.status_code)
                                                  if isinstance(answer, dict) else ""))
        token = answer.get("id_token")
        if not isinstance(token, str):
            raise OidcFailure("no_id_token")
        return token

    def verify_id_token(self, id_token: str, *, nonce: str) -> Identity:
        """Check the ID token (signature, issuer, audience, expiry, nonce) and say who it names."""
        meta = self.metadata()
        if not meta.algorithms:
            raise OidcFailure("provider_misconfigured", "no safe signing algorithm")
        try:
            token = jwt.decode(id_token, self.keys(), algorithms=list(meta.algorithms))
        except (JoseError, ValueError):
            # Perhaps signed with a key the provider published after we fetched its keys.
            try:
                token = jwt.decode(id_token, self.keys(refresh=True),
                                   algorithms=list(meta.algorithms))
            except (JoseError, ValueError) as exc:
                raise OidcFailure("bad_id_token", f"signature: {exc}") from exc
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": meta.issuer},
            aud={"essential": True, "value": self.settings.oidc_client_id},
            sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": nonce})
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise OidcFailure("bad_id_token", f"claims: {exc}") from exc
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.oidc_client_id:
            raise OidcFailure("bad_id_token", "azp")
        email = claims.get("email")
        verified = claims.get("email_verified") is True and isinstance(email, str) and \
            "@" in email
        return Identity(issuer=meta.issuer, subject=str(claims["sub"]),
                        email=accounts.normalize_email(str(email)) if verified else None,
                        name=str(claims.get("name") or "")[:120])


# -- sign-ons under way ------------------------------------------------------------------------

@dataclass(frozen=True)
class Started:
    state: str
    nonce: str
    verifier: str


def start(db: Session, *, browser: str, next_url: str) -> Started:
    """Record a sign-on under way for the browser whose cookie value is ``browser``."""
    now = utcnow()
    db.execute(delete(OidcLogin).where(OidcLogin.expires_at <= now))
    started = Started(state=generate_token(43), nonce=generate_token(43),
                      verifier=generate_token(64))
    db.add(OidcLogin(state_hash=accounts.sha256_hex(started.state),
                     browser_hash=accounts.sha256_hex(browser), nonce=started.nonce,
                     code_verifier=started.verifier, next_url=next_url[:2000], created_at=now,
                     expires_at=now + timedelta(minutes=LOGIN_MINUTES)))
    return started


@dataclass(frozen=True)
class Pending:
    nonce: str
    verifier: str
    next_url: str


def consume(db: Session, *, state: str, browser: str | None) -> Pending:
    """The sign-on this callback ends, used up (a second callback with the same ``state``
    finds nothing). Refused unless this browser started it and it is fresh."""
    row = db.scalar(select(OidcLogin).where(OidcLogin.state_hash
                                            == accounts.sha256_hex(state[:200])))
    if row is None:
        raise OidcFailure("unknown_state")
    db.delete(row)
    if browser is None or not secrets.compare_digest(row.browser_hash,
                                                     accounts.sha256_hex(browser)):
        raise OidcFailure("other_browser")
    if row.expires_at <= utcnow():
        raise OidcFailure("expired")
    return Pending(nonce=row.nonce, verifier=row.code_verifier, next_url=row.next_url)


# -- accounts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What a checked identity leads to: a person to sign in, or an address whose account
    must first be proven with its password (``link_email``)."""

    user: User | None = None
    link_email: str | None = None


def linked_user(db: Session, identity: Identity) -> User | None:
    link = db.scalar(select(OidcLink).where(OidcLink.issuer == identity.issuer,
                                            OidcLink.subject == identity.subject))
    return db.get(User, link.user_id) if link is not None else None


def resolve(db: Session, settings: Settings, passwords: Passwords, identity: Identity
            ) -> Outcome:
    user = linked_user(db, identity)
    if user is not None:
        if not user.is_active:
            raise OidcFailure("account_inactive")
        return Outcome(user=user)
    if identity.email is None:
        # Without a verified address we cannot tell whose account this is, nor give it one.
        raise OidcFailure("email_unverified")
    existing = db.scalar(select(User).where(User.email == identity.email))
    if existing is not None:
        return Outcome(link_email=existing.email)
    if not settings.open_registration and db.scalar(select(User.id).limit(1)) is not None:
        raise OidcFailure("registration_closed")
    # An account whose password nobody knows: it signs in through the provider (or sets a
    # password with a reset link, which goes to the verified address).
    done = accounts.register(db, settings, passwords, email=identity.email,
                             name=identity.name or identity.email.split("@")[0],
                             password=secrets.token_urlsafe(32), by_operator=True)
    assert done.user is not None  # noqa: S101 - a fresh address always gets an account
    link(db, identity, done.user)
    return Outcome(user=done.user)


def link(db: Session, identity: Identity, user: User) -> None:
    db.add(OidcLink(issuer=identity.issuer, subject=identity.subject, user_id=user.id))
    db.flush()
