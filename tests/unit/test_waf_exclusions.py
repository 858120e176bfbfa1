"""Which rules of AWS's common rule set the web ACL (infra/waf.yaml) must only count, and why.

AWS WAF cannot run offline; what can be shown here is that the service accepts, and must accept, requests
that carry what each excluded rule looks for, as AWS documents the rule (AWSManagedRulesCommonRuleSet:
SizeRestrictions_BODY, a body over 8 KB; GenericLFI_BODY, "../" path traversal; CrossSiteScripting_BODY,
script tags; EC2MetaDataSSRF_BODY, the instance metadata address; GenericRFI_BODY, a URL with an IPv4
address; NoUserAgent_HEADER, no User-Agent). A SeaCat CR is binary DER whose attributes are the device's
own text, carried byte for byte: a device whose attributes say so would be refused by the firewall with a
bare 403 instead of enrolling. The service parses every field strictly, bounds it (chalicelib/seacat/codec.py)
and never renders it unescaped, so these patterns are data here, not an attack on an HTML page or a file path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from seacat_client.cr import build_cr
from tests.conftest import REFERENCE_SPEC, ROOT, memory_client

TOKEN = "sct_00000000000000dd_waf-operator-token-0123456789ab"

# what each counted rule looks for, as AWS documents it, and a device attribute value that carries it
TRIGGERS = {
    "GenericLFI_BODY": b"../",
    "CrossSiteScripting_BODY": b"<script>",
    "EC2MetaDataSSRF_BODY": b"169.254.169.254",
    "GenericRFI_BODY": b"http://192.0.2.10/",
}
ATTRIBUTES = [
    ("path", "../../var/lib/device/config"),
    ("label", "<script>alert(1)</script> kiosk"),
    ("metadata", "http://169.254.169.254/latest"),
    ("update", "http://192.0.2.10/firmware.bin"),
] + [(f"note{i}", "x" * 1000) for i in range(9)]  # long attributes: a CR over 8 KB, within the 16 KiB limit


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with memory_client(monkeypatch, TOKEN) as (client, _):
        yield client


def test_the_service_enrols_a_device_whose_cr_carries_what_the_counted_rules_look_for(memory: Any) -> None:
    from chalicelib.seacat.codec import MAX_CR_SIZE

    admin = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert memory.http.put("/tenants/acme", headers=admin, body="{}").status_code == 201
    assert memory.http.put("/acme/x509/self-signed", headers=admin, body=REFERENCE_SPEC).status_code == 201
    body = build_cr(ec.generate_private_key(ec.SECP256R1()), application="kiosk", attributes=ATTRIBUTES)
    assert 8192 < len(body) <= MAX_CR_SIZE  # SizeRestrictions_BODY refuses over 8 KB; the service takes 16 KiB
    for rule, pattern in TRIGGERS.items():
        assert pattern in body, rule  # the device's text, verbatim in the binary body WAF inspects
    # no User-Agent header either (NoUserAgent_HEADER): devices and gateways are not browsers
    answer = memory.http.put("/acme/seacat/enroll", headers={"Content-Type": "application/octet-stream"}, body=body)
    assert answer.status_code == 200, answer.body
    assert answer.headers["Content-Type"] == "application/pkix-cert" and answer.body[:1] == b"\x30"


def test_the_web_acl_counts_exactly_those_rules_and_enforces_the_services_own_size_instead() -> None:
    from tests.integration.test_infra import load_template

    waf = load_template(Path(ROOT / "infra" / "waf.yaml"))
    rules = {r["Name"]: r for r in waf["Resources"]["WebAcl"]["Properties"]["Rules"]}
    group = rules["AWSCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    counted = {o["Name"] for o in group["RuleActionOverrides"] if o["ActionToUse"] == {"Count": {}}}
    assert counted == {*TRIGGERS, "SizeRestrictions_BODY", "NoUserAgent_HEADER"}
    size = rules["EnrolmentBodyTooLarge"]["Statement"]["AndStatement"]["Statements"][1]["SizeConstraintStatement"]
    assert size["Size"] == 16384
