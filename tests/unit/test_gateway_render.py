"""scripts/gateway.py render: the workers' user and group (the `user` directive), without a PKI or NGINX.

NGINX takes `user nobody;` to mean the group nobody too, and as root refuses to start where there is
no such group (Debian: getgrnam("nobody") failed). The lookups of the rendering machine are faked
here, for a Debian-like and a Red Hat-like system; tests/e2e/test_gateway.py runs `nginx -t` on the
real one.
"""

from __future__ import annotations

import datetime
import grp
import pwd
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from scripts import gateway

DEBIAN = {
    "users": {"nobody": 65534, "www-data": 33, "root": 0},
    "groups": {"nogroup": 65534, "www-data": 33, "root": 0},
}
RED_HAT = {
    "users": {"nobody": 65534, "nginx": 990, "root": 0},
    "groups": {"nobody": 65534, "nginx": 990, "root": 0},
}


def fake_system(monkeypatch: pytest.MonkeyPatch, system: dict[str, dict[str, int]]) -> None:
    users, groups = system["users"], system["groups"]
    by_gid = {gid: name for name, gid in groups.items()}

    def getpwnam(name: str) -> pwd.struct_passwd:
        if name not in users:
            raise KeyError(name)
        return pwd.struct_passwd((name, "x", users[name], users[name], name, "/nonexistent", "/usr/sbin/nologin"))

    def getgrnam(name: str) -> grp.struct_group:
        if name not in groups:
            raise KeyError(name)
        return grp.struct_group((name, "x", groups[name], []))

    def getgrgid(gid: int) -> grp.struct_group:
        if gid not in by_gid:
            raise KeyError(gid)
        return grp.struct_group((by_gid[gid], "x", gid, []))

    monkeypatch.setattr(pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(grp, "getgrnam", getgrnam)
    monkeypatch.setattr(grp, "getgrgid", getgrgid)


@pytest.mark.parametrize(
    "system, user, group, expected",
    [
        # Debian: no group nobody, nobody's own group is nogroup
        (DEBIAN, "nobody", None, "nobody nogroup"),
        (DEBIAN, "www-data", None, "www-data"),
        (DEBIAN, "root", None, "root"),
        # a group of the user's name: NGINX's own default, the directive as before
        (RED_HAT, "nobody", None, "nobody"),
        (RED_HAT, "nginx", None, "nginx"),
        # --group wins, whatever the machine has
        (DEBIAN, "nobody", "nogroup", "nobody nogroup"),
        (RED_HAT, "nobody", "nogroup", "nobody nogroup"),
        (DEBIAN, "www-data", "root", "www-data root"),
        # a user this machine does not know: as given (NGINX's rule)
        (DEBIAN, "gateway", None, "gateway"),
        # nobody unknown too, but the group nogroup exists
        ({"users": {}, "groups": {"nogroup": 65534}}, "nobody", None, "nobody nogroup"),
        ({"users": {}, "groups": {}}, "nobody", None, "nobody"),
        # nobody's primary group has no name here: nogroup if there is one
        ({"users": {"nobody": 65534}, "groups": {"nogroup": 65533}}, "nobody", None, "nobody nogroup"),
    ],
)
def test_worker_user(
    monkeypatch: pytest.MonkeyPatch, system: dict[str, dict[str, int]], user: str, group: str | None, expected: str
) -> None:
    fake_system(monkeypatch, system)
    assert gateway.worker_user(user, group) == expected


@pytest.mark.parametrize("user, group", [("no body", None), ("nobody;", None), ("nobody", "no;group"), ("nobody", ""), ("", None)])
def test_worker_user_refuses_what_could_break_the_directive(user: str, group: str | None) -> None:
    with pytest.raises(gateway.GatewayError):
        gateway.worker_user(user, group)


def ca_bundle() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Root CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def render(monkeypatch: pytest.MonkeyPatch, out: Path, *extra: str) -> str:
    bundle = ca_bundle()
    monkeypatch.setattr(gateway, "fetch_ca_bundle", lambda pki_url, tenant: bundle)
    argv = ["render", "--tenant", "acme", "--pki-url", "http://127.0.0.1:9", "--out", str(out),
            "--listen", "127.0.0.1:8443", "--self-signed-server-cert", *extra]
    assert gateway.main(argv) == 0
    return (out / "nginx.conf").read_text()


def user_lines(conf: str) -> list[str]:
    return [line for line in conf.splitlines() if line.startswith("user ")]


def test_render_default_user_on_debian(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_system(monkeypatch, DEBIAN)
    assert user_lines(render(monkeypatch, tmp_path / "default")) == ["user nobody nogroup;"]
    assert user_lines(render(monkeypatch, tmp_path / "www", "--user", "www-data")) == ["user www-data;"]
    assert user_lines(render(monkeypatch, tmp_path / "both", "--user", "www-data", "--group", "nogroup")) == ["user www-data nogroup;"]


def test_render_default_user_with_a_group_nobody(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_system(monkeypatch, RED_HAT)
    assert user_lines(render(monkeypatch, tmp_path / "default")) == ["user nobody;"]
    assert user_lines(render(monkeypatch, tmp_path / "nginx", "--user", "nginx")) == ["user nginx;"]


def test_render_default_user_names_a_group_this_machine_has(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On the machine that runs the tests, as NGINX would look it up (when nobody exists here)."""
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody on this machine")
    (line,) = user_lines(render(monkeypatch, tmp_path))
    words = line.rstrip(";").split()
    assert words[:2] == ["user", "nobody"]
    grp.getgrnam(words[2] if len(words) == 3 else "nobody")  # raises KeyError where NGINX would fail
