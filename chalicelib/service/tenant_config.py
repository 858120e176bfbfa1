"""A tenant's configuration: which keys a PUT may set, and what each accepts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chalicelib.domain import DEFAULT_LIFETIME_DAYS, TenantConfig
from chalicelib.errors import InvalidInput

MIN_LIFETIME_DAYS = 32  # SeaCat clients renew 30 days before expiry: anything shorter loops forever
MAX_LIFETIME_DAYS = 3650
CONFIG_KEYS = {
    "seacat",
    "approve",
    "manualApproval",
    "lifetimeDays",
    "approveRenewals",
    "webhookTimeout",
    "publicBaseUrl",
    "estProfile",
}


def _url(value: object, field: str, *, base: bool = False) -> str | None:
    """An http(s) URL of printable ASCII (an internationalised host in its IDNA "xn--" form);
    ``base``: also no query or fragment, since paths are appended to it."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise InvalidInput("must be an http(s) URL or null", field=field)
    if not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidInput(
            "must be printable ASCII without spaces (percent-encode the path, use the IDNA form of the host)",
            field=field,
        )
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput("must be an http(s) URL or null", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("must be an http(s) URL or null", field=field)
    if base and (parts.query or parts.fragment):
        raise InvalidInput("must have no query or fragment: paths are appended to it", field=field)
    return value


def _approve_url(value: object) -> str | None:
    """The approve webhook: outside the local stage, https on a public host (webhook.url_refusal;
    checked again at each call)."""
    from chalicelib.service import webhook

    url = _url(value, "approve")
    refusal = webhook.url_refusal(url) if url is not None else None
    if refusal == webhook.NOT_HTTPS:
        raise InvalidInput("must be an https URL: the webhook receives every CR and decides its issue", field="approve")
    if refusal is not None:
        raise InvalidInput("must not name a loopback, private, link-local or other non-public address", field="approve")
    return url


def _bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("must be true or false", field=field)
    return value


def merge_config(current: TenantConfig, body: dict[str, Any]) -> TenantConfig:
    """Apply the configuration keys given in ``body`` to ``current``; other keys stay."""
    config = current
    if "seacat" in body:
        config = replace(config, seacat=_bool(body["seacat"], "seacat"))
    if "approve" in body:
        config = replace(config, approve=_approve_url(body["approve"]))
    if "manualApproval" in body:
        config = replace(config, manual_approval=_bool(body["manualApproval"], "manualApproval"))
    if "approveRenewals" in body:
        config = replace(config, approve_renewals=_bool(body["approveRenewals"], "approveRenewals"))
    if "lifetimeDays" in body:
        days = body["lifetimeDays"]
        if days is None:
            days = DEFAULT_LIFETIME_DAYS
        if not isinstance(days, int) or isinstance(days, bool):
            raise InvalidInput("must be a whole number of days", field="lifetimeDays")
        if days < MIN_LIFETIME_DAYS or days > MAX_LIFETIME_DAYS:
            raise InvalidInput(
                f"must be between {MIN_LIFETIME_DAYS} and {MAX_LIFETIME_DAYS} days: SeaCat clients renew "
                "30 days before expiry, so a lifetime of 31 days or less makes them re-enrol endlessly",
                field="lifetimeDays",
            )
        config = replace(config, lifetime_days=days)
    if "webhookTimeout" in body:
        timeout = body["webhookTimeout"]
        if timeout is not None and (
            not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0.1 <= timeout <= 25
        ):
            raise InvalidInput("must be a number of seconds between 0.1 and 25, or null", field="webhookTimeout")
        config = replace(config, webhook_timeout=float(timeout) if timeout is not None else None)
    if "publicBaseUrl" in body:
        base = _url(body["publicBaseUrl"], "publicBaseUrl", base=True)
        config = replace(config, public_base_url=base.rstrip("/") if base else None)
    if "estProfile" in body:
        name = body["estProfile"]
        if name is not None and (not isinstance(name, str) or config.profile(name) is None):
            raise InvalidInput(
                "must name one of the tenant's profiles (PUT /{tenant}/x509/profiles/{name}), or null",
                field="estProfile",
            )
        config = replace(config, est_profile=name)
    return config
