"""E-mail over SMTP with the standard library; the worker runs it in a thread."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING

from callwatch._alerts.http import DeliveryError
from callwatch._alerts.model import Alert
from callwatch._logging.redact import register_secret

if TYPE_CHECKING:
    from email.message import EmailMessage

__all__ = ["EmailHandler"]


class EmailHandler:
    """A blocking handler: the delivery worker calls it off its loop, under its timeout."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        sender: str,
        to: str | Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_ssl: bool = False,
        timeout: float = 10.0,
        send_resolved: bool = True,
    ) -> None:
        self.host, self.port = host, port
        self.url = f"smtp://{host}:{port}"
        self.sender = sender
        self.to = [to] if isinstance(to, str) else list(to)
        if not self.to:
            raise ValueError("email_alert_handler needs at least one recipient")
        self._username, self._password = username, password
        if password:
            register_secret(password)
        self.starttls, self.use_ssl = starttls, use_ssl
        self.timeout = timeout
        self.send_resolved = send_resolved

    def message(self, alert: Alert) -> EmailMessage:
        # The mail modules load with the first alert mailed, not with every worker.
        from email.message import EmailMessage  # noqa: PLC0415

        state = "RESOLVED" if alert.resolved else alert.severity.upper()
        message = EmailMessage()
        message["Subject"] = f"[{state}] {alert.title}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        labels = alert.labels
        message.set_content(
            f"{alert.message}\n\n"
            f"metric: {alert.metric}\nvalue: {alert.value}\nthreshold: {alert.threshold}\n"
            f"host: {labels.get('instance', '-')}\napp: {labels.get('app', '-')}\n"
            f"environment: {labels.get('environment', '-')}\nfingerprint: {alert.fingerprint}\n"
        )
        return message

    def __call__(self, alert: Alert) -> None:
        import smtplib  # noqa: PLC0415 - see message()

        try:
            self._send(self.message(alert))
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError(f"{self.url} refused every recipient", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            # 4xx is "try again later", 5xx is permanent (bad sender, auth, policy).
            raise DeliveryError(
                f"{self.url} answered SMTP {exc.smtp_code}", retryable=exc.smtp_code < 500
            ) from None

    def _send(self, message: EmailMessage) -> None:
        import smtplib  # noqa: PLC0415 - see message()

        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.use_ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self._username is not None and self._password is not None:
                smtp.login(self._username, self._password)
            smtp.send_message(message)

    def __repr__(self) -> str:
        return f"EmailHandler({self.url!r}, to={self.to!r})"
