"""E-mail through a real SMTP conversation with a small server on 127.0.0.1."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from email import message_from_bytes

import pytest

from callwatch._alerts.email import EmailHandler
from callwatch._alerts.http import DeliveryError
from tests._alerts.alerts import firing, resolved


class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, reject_rcpt: int | None = None) -> None:
        super().__init__(("127.0.0.1", 0), SMTPSession)
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.reject_rcpt = reject_rcpt


class SMTPSession(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib: EHLO, MAIL, RCPT, DATA, QUIT."""

    server: SMTPServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost ESMTP test")
        sender, recipients = "", []
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command[:4].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 localhost")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].strip(" <>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                if self.server.reject_rcpt:
                    self.reply(f"{self.server.reject_rcpt} mailbox unavailable")
                    continue
                recipients.append(command.split(":", 1)[1].strip(" <>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 go ahead")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                self.server.messages.append((sender, recipients, data))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_alert_arrives_as_an_email_with_the_guides_subject(smtp: SMTPServer) -> None:
    port = smtp.server_address[1]
    handler = EmailHandler("127.0.0.1", port, sender="alerts@example.com", to=["ops@example.com", "oncall@example.com"])
    handler(firing("critical"))
    handler(resolved())
    (sender, recipients, data), (_, _, data2) = smtp.messages
    assert sender == "alerts@example.com"
    assert recipients == ["ops@example.com", "oncall@example.com"]
    message = message_from_bytes(data)
    assert message["Subject"] == "[CRITICAL] High CPU usage"
    body = message.get_payload()
    assert "cpu_percent" in body and "voice-1" in body
    assert message_from_bytes(data2)["Subject"] == "[RESOLVED] High CPU usage"


def test_permanent_smtp_refusal_is_not_retried() -> None:
    server = SMTPServer(reject_rcpt=550)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        handler = EmailHandler("127.0.0.1", server.server_address[1], sender="a@example.com", to="b@example.com")
        with pytest.raises(DeliveryError) as caught:
            handler(firing())
        assert caught.value.retryable is False
    finally:
        server.shutdown()
        server.server_close()


def test_a_refused_connection_is_a_network_error_worth_retrying() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = EmailHandler("127.0.0.1", port, sender="a@example.com", to="b@example.com", timeout=1)
    with pytest.raises(OSError):
        handler(firing())
