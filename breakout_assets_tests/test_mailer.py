"""The mailer against a real SMTP server on 127.0.0.1 (aiosmtpd): plain, STARTTLS and implicit
TLS with a login, and every failure (refused, bad login, timeout) returned, never raised, with
the password nowhere in what is returned."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import EnvVar

from breakout_assets.resources.mailer import (
    PASSWORD_VARIABLE,
    InlineImage,
    Mailer,
    compose,
    mailer_resource,
)
from breakout_assets.settings import SettingsError, load_settings
from breakout_assets_tests.local_smtp import (
    HOST,
    free_port,
    self_signed_cert,
    silent_server,
    smtp_server,
)

# aiosmtpd warns that implicit TLS + AUTH "does not require TLS": the connection is TLS already
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

PASSWORD = "s3cret-Hunter2-pw"
PNG = b"\x89PNG\r\n\x1a\nnot really a picture"


@pytest.fixture
def trusted_cert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that the client's default trust store accepts."""
    cert = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert[0]))
    return cert


def message():
    return compose(
        "Breakout test",
        "plain body",
        html='<p>html body</p><img src="cid:equity">',
        images=[InlineImage("equity", "equity.png", PNG)],
    )


def test_plain_delivery_carries_html_and_inline_image() -> None:
    with smtp_server() as (inbox, port):
        mailer = Mailer(host=HOST, port=port, security="none", recipients=["ops@example.test"])
        result = mailer.send(message())
    assert result.status == "sent" and result.error is None
    assert result.recipients == ("ops@example.test",)
    [received] = inbox.messages
    assert received.rcpt_tos == ["ops@example.test"]
    assert received.mail_from == "breakout@localhost"
    parsed = received.message
    assert parsed["Subject"] == "Breakout test"
    assert "html body" in parsed.get_body(("html",)).get_content()
    [image] = [part for part in parsed.iter_attachments()]
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == "<equity>"
    assert image.get_content() == PNG


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_with_login(security: str, trusted_cert, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with smtp_server(security, trusted_cert, login=("breakout", PASSWORD)) as (inbox, port):
        mailer = Mailer(
            host=HOST,
            port=port,
            security=security,
            user="breakout",
            password=EnvVar(PASSWORD_VARIABLE),
            recipients=["a@example.test", "b@example.test"],
        )
        result = mailer.send(message())
    assert result.status == "sent", result.error
    assert inbox.logins == [("breakout", PASSWORD)]
    assert inbox.messages[0].rcpt_tos == ["a@example.test", "b@example.test"]


def test_wrong_password_is_a_failure_without_the_password(
    trusted_cert, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with smtp_server("starttls", trusted_cert, login=("breakout", "another")) as (inbox, port):
        mailer = Mailer(
            host=HOST,
            port=port,
            user="breakout",
            password=EnvVar(PASSWORD_VARIABLE),
            recipients=["ops@example.test"],
        )
        result = mailer.send(message())
    assert result.status == "failed"
    assert "SMTPAuthenticationError" in result.error
    assert PASSWORD not in result.error
    assert inbox.messages == []


def test_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    """Without trusting the self-signed certificate the client refuses it: TLS is verified."""
    cert = self_signed_cert(tmp_path)
    with smtp_server("ssl", cert) as (inbox, port):
        result = Mailer(host=HOST, port=port, security="ssl", recipients=["x@example.test"]).send(
            message()
        )
    assert result.status == "failed"
    assert "CERTIFICATE_VERIFY_FAILED" in result.error
    assert inbox.messages == []


def test_refused_connection_and_timeout_are_returned() -> None:
    refused = Mailer(host=HOST, port=free_port(), security="none", recipients=["x@example.test"])
    result = refused.send(message())
    assert result.status == "failed"
    assert "ConnectionRefusedError" in result.error
    with silent_server() as port:
        hung = Mailer(
            host=HOST, port=port, security="none", recipients=["x@example.test"], timeout_s=0.5
        )
        result = hung.send(message())
    assert result.status == "failed"
    assert "timed out" in result.error


def test_no_login_over_a_plain_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    with smtp_server() as (inbox, port):
        mailer = Mailer(
            host=HOST,
            port=port,
            security="none",
            user="breakout",
            password=EnvVar(PASSWORD_VARIABLE),
            recipients=["ops@example.test"],
        )
        result = mailer.send(message())
    assert result.status == "failed"
    assert "unencrypted" in result.error
    assert inbox.messages == [] and inbox.logins == []


def test_not_configured_attempts_nothing() -> None:
    assert Mailer(host=None, recipients=["x@example.test"]).send(message()).status == (
        "not_configured"
    )
    assert Mailer(host=HOST, port=free_port()).send(message()).status == "not_configured"


def test_resource_names_the_password_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, PASSWORD)
    monkeypatch.setenv("BREAKOUT_SMTP_HOST", "mail.example.test")
    monkeypatch.setenv("BREAKOUT_SMTP_TO", "a@example.test, b@example.test")
    mailer = mailer_resource(load_settings())
    assert isinstance(mailer.password, EnvVar) and mailer.password.env_var_name == PASSWORD_VARIABLE
    assert mailer.recipients == ["a@example.test", "b@example.test"]
    assert PASSWORD not in repr(mailer) and PASSWORD not in str(mailer.model_dump())
    monkeypatch.delenv(PASSWORD_VARIABLE)
    with pytest.raises(SettingsError, match=PASSWORD_VARIABLE):
        mailer_resource(load_settings(smtp_password=PASSWORD))
