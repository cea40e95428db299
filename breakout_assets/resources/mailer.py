"""Mailer: the one door to SMTP, for the daily report and the alerts.

Email is a report, never a precondition of trading: `send` returns what happened (sent,
failed with the error, not configured) and never raises for a refused connection, a failed
login or a timeout, so a mail outage cannot fail a run. The password reaches the resource only
as the environment variable BREAKOUT_SMTP_PASSWORD (a Dagster EnvVar: the UI and the run config
show its name), and is scrubbed from every error a caller may log or store. A login is only
ever sent over TLS (STARTTLS or implicit SSL); certificates are verified against the system's
trust store (SSL_CERT_FILE names another bundle, e.g. a private relay's CA).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from breakout_assets.resources.postgres import env_resolved
from breakout_assets.settings import BreakoutSettings, SettingsError

PASSWORD_VARIABLE = "BREAKOUT_SMTP_PASSWORD"

DeliveryStatus = Literal["sent", "failed", "not_configured"]


@dataclass(frozen=True)
class MailResult:
    """What became of one message: the row `report_deliveries` or `alerts` records."""

    status: DeliveryStatus
    recipients: tuple[str, ...]
    error: str | None = None


@dataclass(frozen=True)
class InlineImage:
    """A PNG attached to the message and shown in its HTML as <img src="cid:{cid}">."""

    cid: str
    filename: str
    png: bytes


def compose(
    subject: str,
    text: str,
    html: str | None = None,
    images: Sequence[InlineImage] = (),
) -> EmailMessage:
    """A message with a plain-text part (what a terminal mail reader shows), the HTML as the
    alternative, and each image attached, referenced from the HTML by its Content-ID."""
    message = EmailMessage()
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="breakout.local")
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for image in images:
        message.add_attachment(
            image.png,
            maintype="image",
            subtype="png",
            filename=image.filename,
            cid=f"<{image.cid}>",
        )
    return message


class Mailer(ConfigurableResource):
    host: str | None = Field(default=None, description="SMTP server; unset: no email is sent.")
    port: int = Field(default=587, description="587: STARTTLS; 465: implicit SSL; 25: none.")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user: str | None = Field(default=None, description="SMTP login; unset: no login.")
    password: str | None = Field(
        default=None,
        description="Set as EnvVar('BREAKOUT_SMTP_PASSWORD'): never a literal value.",
    )
    sender: str = "breakout@localhost"
    recipients: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=10.0, gt=0)

    @property
    def configured(self) -> bool:
        return bool(self.host and self.recipients)

    def _password(self) -> str | None:
        return env_resolved(self.password)

    def scrub(self, text: str) -> str:
        """`text` with the password masked: server replies and exceptions may echo it."""
        password = self._password()
        return text.replace(password, "***") if password else text

    def send(self, message: EmailMessage) -> MailResult:
        """Send `message` to the configured recipients; never raises for a mail failure."""
        recipients = tuple(self.recipients)
        if not self.configured:
            return MailResult("not_configured", recipients)
        if "From" not in message:
            message["From"] = self.sender
        if "To" not in message:
            message["To"] = ", ".join(recipients)
        try:
            refused = self._deliver(message, recipients)
        except (smtplib.SMTPException, OSError, UnicodeError) as error:
            # OSError covers refused connections, unknown hosts, timeouts and TLS failures
            said = " ".join(str(error).split()) or "no detail"
            return MailResult("failed", recipients, self.scrub(f"{type(error).__name__}: {said}"))
        if refused:
            detail = "; ".join(f"{to}: {code} {reply!r}" for to, (code, reply) in refused.items())
            return MailResult("sent", recipients, self.scrub(f"refused recipients: {detail}"))
        return MailResult("sent", recipients)

    def _deliver(self, message: EmailMessage, recipients: tuple[str, ...]) -> Mapping:
        assert self.host is not None
        context = ssl.create_default_context()
        if self.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout_s, context=context
            )
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with client:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.user:
                if self.security == "none":
                    raise smtplib.SMTPException(
                        "refusing to send the SMTP login over an unencrypted connection: "
                        "set BREAKOUT_SMTP_SECURITY to starttls or ssl"
                    )
                client.login(self.user, self._password() or "")
            return client.send_message(message, from_addr=self.sender, to_addrs=list(recipients))


def mailer_resource(settings: BreakoutSettings, environ: Mapping[str, str] = os.environ) -> Mailer:
    """The mailer of the settings. The password is passed by name (EnvVar), never by value: a
    password given in code has no variable to name, so it is refused."""
    password = None
    if settings.smtp_password is not None:
        if not environ.get(PASSWORD_VARIABLE):
            raise SettingsError(
                "the SMTP password was given in code, but runs read it from the environment: "
                f"set {PASSWORD_VARIABLE}"
            )
        password = EnvVar(PASSWORD_VARIABLE)
    return Mailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        user=settings.smtp_user,
        password=password,
        sender=settings.smtp_from,
        recipients=list(settings.smtp_to),
        timeout_s=settings.smtp_timeout_s,
    )
