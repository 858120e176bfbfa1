"""The operators' console in a real headless Chromium (Debian's chromium and chromedriver, driven by
Selenium) against `make run`'s stack: sign in, the pending queue in manual mode, revocation, an XSS
probe from a device, a tenant token that cannot see another tenant, profiles and EST enrolment
credentials (the password shown once), the security headers, and the screenshots of docs/console.md
(``make screenshots`` writes them there; here they go to a temporary directory and are checked for size)."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from seacat_client.cr import build_cr
from tests.e2e.conftest import ROOT, Stack, setup_tenant
from tests.e2e.conftest import http as request

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT = 15  # seconds, the most any step may take before the test fails
OCTET = {"Content-Type": "application/octet-stream"}

pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)

# Markup and script in every string a device controls: each must show as text and run nothing.
PROBE_APP = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
PROBE_ATTRS = [("<b>key</b>", '<svg onload="alert(3)">'), ("model", '"><iframe src="javascript:alert(4)">')]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def wait(driver: Any, condition: Any) -> Any:
    """Poll ``condition`` for up to WAIT seconds; an element replaced by a re-render meanwhile is looked up again."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (StaleElementReferenceException, NoSuchElementException)
    return WebDriverWait(driver, WAIT, ignored_exceptions=ignored).until(condition)


def by_css(css: str) -> Any:
    from selenium.webdriver.common.by import By

    return (By.CSS_SELECTOR, css)


def sign_in(driver: Any, stack: Stack, token: str) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec_

    driver.get(f"{stack.url}/health")  # the origin's sessionStorage, without the console running on it
    driver.execute_script("sessionStorage.clear()")
    driver.get(f"{stack.url}/console/")
    field = wait(driver, ec_.visibility_of_element_located(by_css("input[name=token]")))
    field.send_keys(token + Keys.ENTER)  # the keyboard alone signs in
    wait(driver, ec_.visibility_of_element_located(by_css("#signout")))


def click_in_row(driver: Any, text: str, button: str) -> None:
    """Click a row's button; if the list re-renders between finding the row and the click (a decision
    just made removes its row), find it again."""
    from selenium.webdriver.common.by import By

    def clicked(d: Any) -> bool:
        rows = [r for r in d.find_elements(By.CSS_SELECTOR, "#view tbody tr") if text in r.text]
        if len(rows) != 1:
            return False
        rows[0].find_element(By.XPATH, f".//button[text()='{button}']").click()
        return True

    wait(driver, clicked)


def open_page(driver: Any, stack: Stack, hash_path: str, ready_css: str) -> Any:
    """Go to a console URL and wait until the page shows ``ready_css`` (and is no longer loading)."""
    from selenium.webdriver.support import expected_conditions as ec_

    driver.get(f"{stack.url}/console/#{hash_path}")
    found = wait(driver, ec_.presence_of_element_located(by_css(ready_css)))
    wait(driver, lambda d: not d.find_elements(*by_css("[aria-busy=true]")))
    return found


def pending_cr(stack: Stack, tenant: str, application: str, attributes: list[tuple[str, str]]) -> tuple[bytes, str]:
    """Send a CR to a manual-approval tenant: 202 and its id."""
    key = ec.generate_private_key(ec.SECP256R1())
    cr = build_cr(key, application=application, attributes=attributes)
    status, _, body = request("PUT", f"{stack.url}/{tenant}/seacat/enroll", cr, OCTET)
    assert status == 202, body
    return cr, str(json.loads(body)["identity"])


def api(stack: Stack, method: str, path: str, body: object = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token or stack.token}", "Content-Type": "application/json"}
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = request(method, f"{stack.url}{path}", data, headers)
    return status, json.loads(raw) if raw else None


def device_csr(name: str, domain: str) -> bytes:
    """A device's CSR, DER: CN=name, a DNS SAN name.domain, a new P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"{name}.{domain}")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.DER)


def sign_csr(
    stack: Stack, tenant: str, profile: str, csr: bytes, username: str, password: str, **headers: str
) -> tuple[int, bytes]:
    """POST /{tenant}/x509/sign under the profile with an EST credential: (status, body)."""
    basic = base64.b64encode(f"{username}:{password}".encode()).decode()
    status, _, body = request(
        "POST",
        f"{stack.url}/{tenant}/x509/sign?profile={profile}",
        csr,
        {"Content-Type": "application/pkcs10", "Authorization": f"Basic {basic}", **headers},
    )
    return status, body


def severe_logs(driver: Any, *expected: str) -> list[str]:
    """The browser's errors (script errors, CSP violations, failed requests) but those with an ``expected`` text."""
    return [
        e["message"]
        for e in driver.get_log("browser")
        if e["level"] == "SEVERE" and not any(x in e["message"] for x in expected)
    ]


def row_of(driver: Any, text: str) -> Any:
    from selenium.webdriver.common.by import By

    rows = [r for r in driver.find_elements(By.CSS_SELECTOR, "#view tbody tr") if text in r.text]
    assert len(rows) == 1, [r.text for r in rows]
    return rows[0]


def test_console_is_served_with_a_strict_policy(stack: Stack) -> None:
    status, headers, body = request("GET", f"{stack.url}/console/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<input id="token" name="token" type="password"' in body
    csp = headers["Content-Security-Policy"]
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert "require-trusted-types-for 'script'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    status, headers, body = request("GET", f"{stack.url}/console/app.js")
    assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Content-Security-Policy"] == csp
    # no inline script or style anywhere: the policy would refuse it, and the files have none
    for name in sorted((ROOT / "chalicelib" / "console").iterdir()):
        text = name.read_text()
        assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write|eval\(", text), name
        if name.suffix == ".html":
            assert not re.search(r"<script>|<style|\sstyle=|\son[a-z]+=", text), name
    # /console redirects under itself so relative URLs resolve; other names are not files
    conn = http.client.HTTPConnection(stack.url.removeprefix("http://"), timeout=WAIT)
    conn.request("GET", "/console")
    answer = conn.getresponse()
    assert (answer.status, answer.getheader("Location")) == (308, "console/")
    conn.close()
    for name in ("nope.js", "..%2Fapp.py", "%2E%2E", "api.py", ".hidden.js"):
        status, _, body = request("GET", f"{stack.url}/console/{name}")
        assert status in (403, 404), name
        assert b"import" not in body


def test_sign_in_approve_and_reject_in_manual_mode(stack: Stack, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    tenant = "console-manual"
    setup_tenant(stack, tenant, '{"manualApproval": true}')
    approved_cr, approved = pending_cr(stack, tenant, "com.example.approve-me", [("model", "A1")])
    _, rejected = pending_cr(stack, tenant, "com.example.reject-me", [])

    sign_in(browser, stack, stack.token)
    assert "Operator" in browser.find_element(By.ID, "who").text
    stored = browser.execute_script("return Object.keys(sessionStorage).sort()")
    assert stored == ["seacat.console.active", "seacat.console.token"]  # the token, and when it was last used
    open_page(browser, stack, f"/tenants/{tenant}/requests", "#view tbody tr")
    row = row_of(browser, approved)
    assert "com.example.approve-me" in row.text and "model = A1" in row.text
    click_in_row(browser, approved, "Approve")
    wait(browser, lambda d: approved not in d.find_element(By.ID, "view").text.split("approved")[-1])
    click_in_row(browser, rejected, "Reject")
    wait(browser, lambda d: "No request is waiting." in d.find_element(By.ID, "view").text)

    status, listed = api(stack, "GET", f"/{tenant}/seacat/cr?state=pending")
    assert (status, listed["items"]) == (200, [])
    # the decisions are the API's: the approved device now gets its certificate, the other is refused
    status, _, der = request("PUT", f"{stack.url}/{tenant}/seacat/enroll", approved_cr, OCTET)
    assert status == 200 and der[:1] == b"\x30"
    status, identity = api(stack, "GET", f"/{tenant}/seacat/identity/{approved}")
    assert identity["approved"] is True and identity["certificate"]
    status, events = api(stack, "GET", f"/audit?tenant={tenant}&type=cr.rejected")
    assert [e["details"]["identity"] for e in events["items"]] == [rejected]
    assert severe_logs(browser) == []


def test_revoke_a_certificate_with_a_reason(stack: Stack, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec_
    from selenium.webdriver.support.ui import Select

    tenant = "console-revoke"
    setup_tenant(stack, tenant)
    key = ec.generate_private_key(ec.SECP256R1())
    status, headers, _ = request("PUT", f"{stack.url}/{tenant}/seacat/enroll", build_cr(key, application="app"), OCTET)
    assert status == 200
    identity = headers["X-SeaCat-Identity"]
    status, found = api(stack, "GET", f"/{tenant}/seacat/identity/{identity}")
    cert_id = found["certificate"]

    sign_in(browser, stack, stack.token)
    open_page(browser, stack, f"/tenants/{tenant}/identities?identity={identity}", "#view tbody tr")
    row_of(browser, "valid").find_element(By.LINK_TEXT, "details").click()
    wait(browser, ec_.presence_of_element_located(by_css("select[name=reason]")))
    Select(browser.find_element(By.CSS_SELECTOR, "select[name=reason]")).select_by_value("keyCompromise")
    browser.find_element(By.XPATH, "//button[text()='Revoke certificate']").click()
    wait(browser, ec_.alert_is_present()).accept()  # "Revoke this certificate?"
    wait(browser, lambda d: "revoked" in d.find_element(By.CSS_SELECTOR, ".facts .badge").text)

    status, cert = api(stack, "GET", f"/{tenant}/x509/cert/{cert_id}")
    assert (cert["status"], cert["revoked"]["reason"]) == ("revoked", "keyCompromise")
    assert "keyCompromise" in browser.find_element(By.CSS_SELECTOR, ".facts").text
    # and it is in the tenant's list of recent revocations
    open_page(browser, stack, f"/tenants/{tenant}/certificates", "#view tbody tr")
    assert "keyCompromise" in row_of(browser, identity).text
    assert severe_logs(browser) == []


def test_device_strings_render_as_text(stack: Stack, browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    tenant = "console-xss"
    setup_tenant(stack, tenant, '{"manualApproval": true}')
    _, identity = pending_cr(stack, tenant, PROBE_APP, PROBE_ATTRS)

    sign_in(browser, stack, stack.token)
    pages = [
        (f"/tenants/{tenant}/requests", "#view tbody tr"),
        (f"/tenants/{tenant}/audit?type=cr.received", "#view tbody tr"),
    ]
    for hash_path, ready in pages:
        open_page(browser, stack, hash_path, ready)
        view = browser.find_element(By.ID, "view")
        # shown literally, as the device sent it
        assert PROBE_APP in view.text, hash_path
        if "requests" in hash_path:
            for key, value in PROBE_ATTRS:
                assert f"{key} = {value}" in view.text
        # nothing of it became an element, and nothing ran
        for tag in ("script", "img", "svg", "iframe", "b"):
            assert view.find_elements(By.TAG_NAME, tag) == [], (hash_path, tag)
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018
    # approve it, then its identity's page shows the application as text too
    row_of(browser, identity)  # the audit page lists the CR once
    open_page(browser, stack, f"/tenants/{tenant}/requests", "#view tbody tr")
    click_in_row(browser, identity, "Approve")
    wait(browser, lambda d: "No request is waiting." in d.find_element(By.ID, "view").text)
    open_page(browser, stack, f"/tenants/{tenant}/identities?identity={identity}", ".facts")
    view = browser.find_element(By.ID, "view")
    assert PROBE_APP in view.find_element(By.CSS_SELECTOR, ".facts").text
    assert view.find_elements(By.TAG_NAME, "script") == [] and view.find_elements(By.TAG_NAME, "img") == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018
    assert severe_logs(browser) == []


def test_a_tenant_token_sees_its_tenant_only(stack: Stack, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec_
    from selenium.webdriver.support.ui import Select

    mine, theirs = "console-mine", "console-theirs"
    setup_tenant(stack, mine, '{"manualApproval": true}')
    setup_tenant(stack, theirs, '{"manualApproval": true}')
    _, their_identity = pending_cr(stack, theirs, "com.example.theirs", [])

    # the operator makes the token in the console; it is shown once
    sign_in(browser, stack, stack.token)
    open_page(browser, stack, "/tokens", "select[name=tenant]")
    Select(browser.find_element(By.CSS_SELECTOR, "select[name=tenant]")).select_by_value(mine)
    browser.find_element(By.CSS_SELECTOR, "input[name=label]").send_keys("console test")
    browser.find_element(By.XPATH, "//button[text()='Create token']").click()
    token = wait(browser, ec_.visibility_of_element_located(by_css(".once .secret"))).text
    assert token.startswith("sct_")
    assert "expires" in browser.find_element(By.ID, "view").text  # a lifetime by default (90 days)
    # the tenant's list shows it, active, with its expiry, and never the token
    Select(browser.find_element(By.CSS_SELECTOR, "select[name=listTenant]")).select_by_value(mine)
    browser.find_element(By.XPATH, "//button[text()='Show tokens']").click()
    wait(browser, lambda d: any("console test" in r.text for r in d.find_elements(By.CSS_SELECTOR, "#view tbody tr")))
    row = row_of(browser, "console test")
    assert "active" in row.text and "never" not in row.text and token not in row.text

    browser.find_element(By.ID, "signout").click()
    wait(browser, ec_.visibility_of_element_located(by_css("input[name=token]")))
    assert browser.execute_script("return sessionStorage.length") == 0
    sign_in(browser, stack, token)
    assert f"Tenant {mine}" in browser.find_element(By.ID, "who").text
    nav = browser.find_element(By.ID, "nav").text
    assert "Tokens" not in nav and "Tenants" not in nav
    # the other tenant's queue: absent to this token, and none of its data shown
    open_page(browser, stack, f"/tenants/{theirs}/requests", "#view .error")
    view = browser.find_element(By.ID, "view").text
    assert f"404: tenant: no tenant {theirs}" in view
    assert their_identity not in view and "com.example.theirs" not in view
    open_page(browser, stack, f"/tenants/{theirs}", "#view .error")
    for page in ("profiles", "est-credentials"):
        open_page(browser, stack, f"/tenants/{theirs}/{page}", "#view .error")
        assert f"404: tenant: no tenant {theirs}" in browser.find_element(By.ID, "view").text, page
    # its own tenant's are its to manage
    open_page(browser, stack, f"/tenants/{mine}/profiles", "#view tbody tr")
    assert "seacat" in browser.find_element(By.ID, "view").text
    # operator pages send it home
    browser.get(f"{stack.url}/console/#/tokens")
    wait(browser, lambda d: d.current_url.endswith(f"#/tenants/{mine}"))
    open_page(browser, stack, f"/tenants/{mine}/requests", "#view .empty")

    # the token never reached a URL nor the service's log
    urls = browser.execute_script("return performance.getEntries().map(e => e.name)")
    assert urls and not [u for u in urls if token in u or "sct_" in u]
    assert token not in stack.log.read_text()
    assert severe_logs(browser, f"/{theirs}/seacat/cr?", f"/tenants/{theirs} ", f"/{theirs}/x509/profiles?") == []


def test_a_path_naming_another_host_keeps_the_api_on_this_origin(stack: Stack, browser: Any) -> None:
    """A path with leading slashes: //evil.invalid/console/ is no console (the server reads it as a path,
    not a host), and where the console is served under extra slashes (///console/) the API root the page
    derives from its path stays on this origin: "//..." would be a URL of another host, the token typed
    in sent there (only the CSP's connect-src and api()'s origin check would stand in the way)."""
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec_

    status, _, body = request("GET", f"{stack.url}//evil.invalid/console/")
    assert status in (403, 404) and b"<html" not in body.lower()

    browser.get(f"{stack.url}/health")
    browser.execute_script("sessionStorage.clear()")
    browser.get_log("browser")  # earlier tests' entries
    browser.get(f"{stack.url}///console/")
    assert browser.execute_script("return location.pathname") == "///console/"
    field = wait(browser, ec_.visibility_of_element_located(by_css("input[name=token]")))
    field.send_keys(stack.token + Keys.ENTER)
    wait(browser, ec_.visibility_of_element_located(by_css("#signout")))  # the API answered, on this origin
    elsewhere = (
        "return performance.getEntriesByType('resource').map(e => e.name).filter(u => new URL(u).origin !== origin)"
    )
    assert browser.execute_script(elsewhere) == []
    assert severe_logs(browser) == []


def fill_in(driver: Any, css: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    control = driver.find_element(By.CSS_SELECTOR, css)
    control.clear()
    control.send_keys(text)


def assert_inert(driver: Any, where: str) -> None:
    """Nothing of the probe became an element, and nothing ran."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    view = driver.find_element(By.ID, "view")
    for tag in ("script", "img", "svg", "iframe"):
        assert view.find_elements(By.TAG_NAME, tag) == [], (where, tag)
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def test_profiles_and_est_credentials(stack: Stack, browser: Any) -> None:
    """A profile made from raw JSON (a 400 names its field), made the EST default, edited, deleted; an
    EST credential whose password is shown once, works, is gone on reload, and is revoked; the free text
    of both (a profile's description, a credential's label) shown as text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec_

    tenant = "console-est"
    setup_tenant(stack, tenant)
    sign_in(browser, stack, stack.token)
    open_page(browser, stack, f"/tenants/{tenant}", ".facts")
    browser.find_element(By.LINK_TEXT, "Profiles").click()  # the tenant's navigation
    wait(
        browser,
        lambda d: "seacat" in d.find_element(By.ID, "view").text and not d.find_elements(*by_css("[aria-busy=true]")),
    )
    assert browser.current_url.endswith(f"#/tenants/{tenant}/profiles")

    # a profile outside the rules: the API's 400 with its field, nothing written
    fill_in(browser, "input[name=name]", "routers")
    fill_in(browser, "textarea[name=profile]", '{"keyTypes": ["P-999"]}')
    browser.find_element(By.XPATH, "//button[text()='Create or replace profile']").click()
    error = wait(browser, ec_.visibility_of_element_located(by_css("form .out .error"))).text
    assert error == "400: keyTypes[0]: must be one of: P-256, P-384, Ed25519, RSA", error
    assert api(stack, "GET", f"/{tenant}/x509/profiles/routers")[0] == 404
    # then a good one, its description a probe of markup and script
    profile = {
        "description": PROBE_APP,
        "keyTypes": ["P-256"],
        "lifetimeDays": 90,
        "sans": {"dns": ["*.routers.example.com"]},
    }
    fill_in(browser, "textarea[name=profile]", json.dumps(profile))
    browser.find_element(By.XPATH, "//button[text()='Create or replace profile']").click()
    wait(browser, lambda d: d.current_url.endswith(f"#/tenants/{tenant}/profiles/routers"))
    facts = wait(browser, ec_.presence_of_element_located(by_css(".facts")))
    assert PROBE_APP in facts.text and "90 days" in facts.text
    assert_inert(browser, "profile")
    status, stored = api(stack, "GET", f"/{tenant}/x509/profiles/routers")
    assert (status, stored["description"], stored["lifetimeHours"], stored["estDefault"]) == (
        200,
        PROBE_APP,
        2160,
        False,
    )

    # the tenant's default EST profile
    browser.find_element(By.XPATH, "//button[text()='Make default EST profile']").click()
    wait(browser, ec_.presence_of_element_located((By.XPATH, "//button[text()='Clear EST default']")))
    assert api(stack, "GET", f"/tenants/{tenant}")[1]["config"]["estProfile"] == "routers"
    # edited from its JSON, the form holding what is stored
    textarea = browser.find_element(By.CSS_SELECTOR, "textarea[name=profile]")
    assert json.loads(textarea.get_attribute("value"))["sans"] == {"dns": ["*.routers.example.com"]}
    fill_in(browser, "textarea[name=profile]", json.dumps({**profile, "lifetimeDays": 30}))
    browser.find_element(By.XPATH, "//button[text()='Save profile']").click()
    wait(browser, lambda d: "30 days" in d.find_element(By.CSS_SELECTOR, ".facts").text)
    assert api(stack, "GET", f"/{tenant}/x509/profiles/routers")[1]["lifetimeHours"] == 720
    # the default cannot be deleted: the API's 409 is shown, the profile stays
    browser.find_element(By.XPATH, "//button[text()='Delete profile']").click()
    wait(browser, ec_.alert_is_present()).accept()
    error = wait(browser, ec_.visibility_of_element_located(by_css("#view .error"))).text
    assert error.startswith("409: name: "), error
    assert api(stack, "GET", f"/{tenant}/x509/profiles/routers")[0] == 200
    # the list: the default marked, the probe as text
    open_page(browser, stack, f"/tenants/{tenant}/profiles", "#view tbody tr")
    row = row_of(browser, "*.routers.example.com")
    assert "default" in row.text and PROBE_APP in row.text
    assert_inert(browser, "profiles")
    # a new profile's name that is taken: asked first, and nothing replaced when declined
    fill_in(browser, "input[name=name]", "routers")
    fill_in(browser, "textarea[name=profile]", "{}")
    browser.find_element(By.XPATH, "//button[text()='Create or replace profile']").click()
    question = wait(browser, ec_.alert_is_present())
    assert question.text.startswith("Profile routers exists: replace it?")
    question.dismiss()
    assert api(stack, "GET", f"/{tenant}/x509/profiles/routers")[1]["lifetimeHours"] == 720
    # another one, deleted
    assert api(stack, "PUT", f"/{tenant}/x509/profiles/spare", {})[0] == 201
    open_page(browser, stack, f"/tenants/{tenant}/profiles/spare", ".facts")
    browser.find_element(By.XPATH, "//button[text()='Delete profile']").click()
    wait(browser, ec_.alert_is_present()).accept()
    wait(browser, lambda d: d.current_url.endswith(f"#/tenants/{tenant}/profiles"))
    assert api(stack, "GET", f"/{tenant}/x509/profiles/spare")[0] == 404

    # an EST credential: the password shown once
    browser.find_element(By.LINK_TEXT, "EST credentials").click()
    wait(browser, ec_.presence_of_element_located(by_css("select[name=profile]")))
    wait(browser, lambda d: not d.find_elements(*by_css("[aria-busy=true]")))
    assert "No enrolment credential." in browser.find_element(By.ID, "view").text
    fill_in(browser, "input[name=uses]", "3")
    fill_in(browser, "input[name=expiresIn]", "12h")
    fill_in(browser, "input[name=label]", PROBE_ATTRS[1][1])
    browser.find_element(By.XPATH, "//button[text()='Create credential']").click()
    password = wait(browser, ec_.visibility_of_element_located(by_css(".once .secret"))).text
    username = browser.find_element(By.CSS_SELECTOR, "form .out .facts dd.mono").text
    assert re.fullmatch(r"estc_[0-9a-f]{20}", username), username
    wait(browser, lambda d: username in d.find_element(By.CSS_SELECTOR, "#view tbody").text)
    row = row_of(browser, username)
    assert "routers" in row.text and "3 of 3" in row.text and "active" in row.text and PROBE_ATTRS[1][1] in row.text
    assert_inert(browser, "credentials")
    # the password shown is the real one: it enrols a CSR under the profile, taking a use
    csr = device_csr("r1", "routers.example.com")
    status, body = sign_csr(stack, tenant, "routers", csr, username, password, Accept="application/json")
    assert status == 200, body
    status, credential = api(stack, "GET", f"/{tenant}/est/credentials/{username}")
    assert (status, credential["state"], credential["usesLeft"], credential["label"]) == (
        200,
        "active",
        2,
        PROBE_ATTRS[1][1],
    )
    assert "password" not in credential

    # not shown again: a reload lists the credential, and its password is nowhere in the page or the tab
    browser.refresh()
    wait(
        browser,
        lambda d: username in d.find_element(By.ID, "view").text and not d.find_elements(*by_css("[aria-busy=true]")),
    )
    assert "2 of 3" in row_of(browser, username).text
    assert browser.find_elements(By.CSS_SELECTOR, ".once") == []
    assert password not in browser.page_source
    assert password not in browser.execute_script(
        "return JSON.stringify(sessionStorage) + JSON.stringify(localStorage)"
    )

    # revoked from its row
    click_in_row(browser, username, "Revoke")
    wait(browser, ec_.alert_is_present()).accept()
    wait(browser, lambda d: "revoked" in d.find_element(By.CSS_SELECTOR, "#view tbody").text)
    assert row_of(browser, username).find_elements(By.TAG_NAME, "button") == []
    assert api(stack, "GET", f"/{tenant}/est/credentials/{username}")[1]["state"] == "revoked"
    assert sign_csr(stack, tenant, "routers", csr, username, password)[0] == 401
    # the browser logs the API's two refusals above (400, 409), and nothing else
    logs = severe_logs(browser)
    refusals = [m for m in logs if f"/{tenant}/x509/profiles/routers - Failed to load resource" in m]
    assert [m.split("status of ")[1][:3] for m in refusals] == ["400", "409"], logs
    assert [m for m in logs if m not in refusals] == []


def test_a_dot_segment_in_a_console_url_reaches_no_other_route(stack: Stack, browser: Any) -> None:
    """A tenant of "." or ".." in a link would be resolved out of the API path by the browser (GET
    /tenants/.. became GET /, /../x509/ca /x509/ca, and so for the page's actions): no call is made."""
    sign_in(browser, stack, stack.token)
    for hash_path in ("/tenants/%2E%2E/cas", "/tenants/./cas", "/tenants/../gateway"):
        # Only the calls this page starts: the sign-in's tenant list may still be loading (a hash
        # change keeps the document), and would be timed once it ends, after any clear.
        since = browser.execute_script("return performance.now()")
        open_page(browser, stack, hash_path, "#view .error")
        urls = browser.execute_script(
            "return performance.getEntriesByType('resource').filter(e => e.startTime >= arguments[0]).map(e => e.name)",
            since,
        )
        assert not [u for u in urls if "/console/" not in u], (hash_path, urls)


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


SCREENSHOTS = [
    ("tenants", "/tenants", "#view tbody tr"),
    ("tenant", "/tenants/{tenant}", ".facts"),
    ("cas", "/tenants/{tenant}/cas", "#view tbody tr"),
    ("requests", "/tenants/{tenant}/requests", "#view tbody tr"),
    ("identity", "/tenants/{tenant}/identities?identity={identity}", "#view tbody tr"),
    ("audit", "/tenants/{tenant}/audit", "#view tbody tr"),
    ("tokens", "/tokens", "select[name=tenant]"),
    ("gateway", "/tenants/{tenant}/gateway", "pre.command"),
    ("profiles", "/tenants/{tenant}/profiles", "#view tbody tr"),
    ("est-credentials", "/tenants/{tenant}/est-credentials", "#view tbody tr"),
]


def test_screenshots_of_the_main_pages(stack: Stack, browser: Any, tmp_path: Path) -> None:
    """Each main page renders at 1280×800 and at phone width (390); ``SEACAT_SCREENSHOTS=DIR`` keeps them."""
    out = Path(os.environ.get("SEACAT_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    tenant = "acme-devices"
    setup_tenant(stack, tenant, '{"manualApproval": true}')
    key = ec.generate_private_key(ec.SECP256R1())
    api(stack, "PUT", f"/tenants/{tenant}", {"manualApproval": False})
    status, headers, _ = request(
        "PUT", f"{stack.url}/{tenant}/seacat/enroll", build_cr(key, application="com.acme.thermostat"), OCTET
    )
    assert status == 200
    identity = headers["X-SeaCat-Identity"]
    api(stack, "PUT", f"/tenants/{tenant}", {"manualApproval": True})
    for n, model in enumerate(("T-100", "T-200", "H-7")):
        pending_cr(stack, tenant, f"com.acme.{'thermostat' if n < 2 else 'hub'}", [("model", model), ("os", "14")])
    routers = {
        "description": "Branch routers: EC or RSA keys, a name under routers.acme.example",
        "keyTypes": ["P-256", "RSA"],
        "lifetimeDays": 90,
        "extendedKeyUsage": ["clientAuth", "serverAuth"],
        "sans": {"dns": ["*.routers.acme.example"]},
    }
    assert api(stack, "PUT", f"/{tenant}/x509/profiles/routers", routers)[0] == 201
    assert api(stack, "PUT", f"/tenants/{tenant}", {"estProfile": "routers"})[0] == 200
    for label, uses in (("router r1, Lisbon", 1), ("batch 2026-12, 40 units", 40)):
        body = {"profile": "routers", "uses": uses, "expiresIn": "7d", "label": label}
        assert api(stack, "POST", f"/{tenant}/est/credentials", body)[0] == 201

    sign_in(browser, stack, stack.token)
    try:
        for width, height, suffix in ((1280, 800, ""), (390, 844, "-phone")):
            browser.set_window_size(width, height)
            for name, hash_path, ready in SCREENSHOTS:
                open_page(browser, stack, hash_path.format(tenant=tenant, identity=identity), ready)
                # nothing wider than the window, at either width: usable without scrolling sideways
                overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, (name, width, overflow)
                if suffix and name not in ("requests", "identity"):
                    continue  # docs/console.md shows these two at phone width
                target = out / f"console-{name}{suffix}.png"
                assert browser.save_screenshot(str(target))
                w, h = png_size(target)
                assert w >= width - 20 and h > 300, (name, w, h)
    finally:
        browser.set_window_size(1280, 800)
    assert severe_logs(browser) == []


def test_a_pending_csr_shows_what_it_asks_for_and_no_error_shows_the_token(stack: Stack, browser: Any) -> None:
    """Manual approval of a PKCS#10 CSR: its subject and SANs are in the queue (not a blank row); an id
    holding a "/" is refused in the page (under make run the server would see another route, whose
    gateway answer quotes the Authorization header), and no error ever shows the token."""
    from selenium.webdriver.common.by import By

    tenant = "console-csr"
    setup_tenant(stack, tenant)
    assert (
        api(
            stack,
            "PUT",
            f"/{tenant}/x509/profiles/held",
            {"sans": {"dns": ["*.held.example.com"]}, "approval": "manual"},
        )[0]
        == 201
    )
    status, made = api(stack, "POST", f"/{tenant}/est/credentials", {"profile": "held", "uses": 1, "expiresIn": "1h"})
    assert status == 201
    csr = device_csr("door-7", "held.example.com")
    status, body = sign_csr(stack, tenant, "held", csr, made["username"], made["password"])
    assert status == 202, body

    sign_in(browser, stack, stack.token)
    open_page(browser, stack, f"/tenants/{tenant}/requests", "#view tbody tr")
    row = row_of(browser, "door-7.held.example.com")
    assert "CN=door-7" in row.text and "held" in row.text and json.loads(body)["identity"] in row.text

    for hash_path in (f"/tenants/{tenant}/certificates?id=x%2Fy", f"/tenants/{tenant}/identities?identity=A%2FB"):
        open_page(browser, stack, hash_path, "#view .error")
        assert stack.token not in browser.find_element(By.ID, "view").text
    status, _, answer = request(
        "GET", f"{stack.url}/{tenant}/x509/cert/x%2Fy", headers={"Authorization": f"Bearer {stack.token}"}
    )
    assert status == 403 and stack.token.encode() not in answer


def test_an_unattended_console_signs_itself_out(stack: Stack, browser: Any) -> None:
    """30 minutes without a key press or a click: the token is forgotten, on the page's own check and
    on a reload of a tab left that long (the time of the last activity is set back, not waited for)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec_

    sign_in(browser, stack, stack.token)
    browser.find_element(By.TAG_NAME, "body").click()  # activity: the clock starts again
    browser.execute_script("sessionStorage.setItem('seacat.console.active', String(Date.now() - 29 * 60 * 1000))")
    browser.refresh()
    wait(browser, ec_.visibility_of_element_located(by_css("#signout")))  # 29 minutes: still signed in
    browser.execute_script("sessionStorage.setItem('seacat.console.active', String(Date.now() - 31 * 60 * 1000))")
    browser.refresh()
    wait(browser, ec_.visibility_of_element_located(by_css("input[name=token]")))
    assert "Signed out after 30 minutes without activity." in browser.find_element(By.ID, "signin").text
    assert browser.execute_script("return sessionStorage.length") == 0
    assert severe_logs(browser) == []
