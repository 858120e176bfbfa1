"""seacat_cli.reference: a reference SeaCat PKI configuration read into what each tenant becomes (no
service: everything here is checked before the first call)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_cli import reference
from seacat_cli.core import USAGE, CliError
from tests.reference_pki import ca_id, reference_ca, sec1_pem, write_reference


def test_the_reference_documentation_s_layout_is_read_with_each_setting(tmp_path: Path) -> None:
    config, ref = write_reference(tmp_path, ["acme", "beta"], approve={"beta": "https://hooks.example.com/cr"})
    plans = reference.read(config, {"acme": ref["acme"].ca_file})
    assert [p.tenant for p in plans] == ["acme", "beta"]
    acme, beta = plans
    assert acme.key_file == tmp_path / "acme" / "seacat_private_key.pem"
    assert acme.key is not None and acme.key.private_numbers() == ref["acme"].key.private_numbers()
    assert acme.seacat is True and acme.approve is None and beta.approve == "https://hooks.example.com/cr"
    assert acme.ca_id == acme.ca_cert == ref["acme"].ca_cert and acme.warnings == []
    assert acme.tenant_body() == {"seacat": True, "privateKey": sec1_pem(ref["acme"].key).decode()}
    assert beta.ca_pem is None and any("not imported" in w for w in beta.warnings)


def test_ids_separated_by_spaces_the_seacat_section_and_a_key_path_from_base_dir(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    key = ec.generate_private_key(ec.SECP256R1())
    (keys / "k.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    config = tmp_path / "conf" / "site.conf"
    config.parent.mkdir()
    config.write_text(
        "[tenants]\nids = one  two\n\n"
        "[seacatpki:private_key:shared]\nkeyfile=k.pem\n\n"
        "[seacat:one]\nca_key=shared\nseacat=no\napprove=https://a.example.com/v\n\n"
        "[seacatpki:x509:ca:two]\nca_key=shared\nseacat=on\n"
    )
    one, two = reference.read(config, {}, base_dir=keys)
    assert (one.seacat, one.approve, two.seacat) == (False, "https://a.example.com/v", True)
    assert one.key_fingerprint == two.key_fingerprint is not None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no [tenants] ids="),
        ("[tenants]\nids=\n", "names no tenant"),
        ("[tenants]\nids=a/b\n", "is not 2-64"),
        ("[tenants]\nids=acme,acme\n", "twice"),
        ("[tenants]\nids=acme\n[seacatpki:x509:ca:acme]\nca_key=nope\n", "no [seacatpki:private_key:nope] keyfile="),
        ("[tenants]\nids=acme\n[seacatpki:x509:ca:acme]\nseacat=maybe\n", "neither yes nor no"),
        ("[tenants]\nids=acme\n[seacatpki:x509:ca:acme]\nca_cert=beta:" + "a" * 96 + "\n", "is not acme:<96 hex"),
        ("not an ini", "not an INI configuration"),
    ],
)
def test_a_configuration_that_does_not_check_out_is_a_usage_error(tmp_path: Path, text: str, words: str) -> None:
    config = tmp_path / "site.conf"
    config.write_text(text)
    with pytest.raises(CliError) as caught:
        reference.read(config, {})
    assert caught.value.code == USAGE and words in str(caught.value)


def test_a_key_file_that_is_not_a_p256_key_and_a_key_section_for_another_tenant_are_refused(tmp_path: Path) -> None:
    config, ref = write_reference(tmp_path, ["acme"])
    ref["acme"].key_file.write_bytes(sec1_pem(ec.generate_private_key(ec.SECP384R1())))
    with pytest.raises(CliError, match="P-256"):
        reference.read(config, {})
    config.write_text(config.read_text().replace("tenants=acme", "tenants=beta"))
    with pytest.raises(CliError, match="does not name acme"):
        reference.read(config, {})


def test_a_ca_certificate_is_checked_as_the_service_checks_it_before_anything_is_sent(tmp_path: Path) -> None:
    config, ref = write_reference(tmp_path, ["acme"])
    config.write_text(config.read_text().replace(f"ca_cert={ref['acme'].ca_cert}\n", ""))
    bad = tmp_path / "bad.pem"
    bad.write_bytes(reference_ca(ref["acme"].key, path_length=None).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(CliError, match="pathLen"):
        reference.read(config, {"acme": bad})
    der = tmp_path / "ca.der"
    der.write_bytes(ref["acme"].ca.public_bytes(serialization.Encoding.DER))
    (plan,) = reference.read(config, {"acme": der})
    assert plan.ca_id == ca_id("acme", ref["acme"].ca)
