"""The report email as a real SMTP server receives it: STARTTLS and implicit TLS, and the ways sending fails."""

from __future__ import annotations

import json

import pytest

from tests.reports.conftest import PASSWORD, USER, SmtpServer, free_port
from tests.reports.sample import sample_inputs
from tradepipe.adapters.mail import MailDeliveryError, SmtpSettings, send_message
from tradepipe.core.report import build_report
from tradepipe.reports.charts import CHARTS
from tradepipe.reports.render import compose_email, validate


def _settings(server: SmtpServer, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = dict(
        host=server.host, port=server.port, user=USER, password=PASSWORD, sender="tradepipe@example.com",
        ca_file=server.ca_file, timeout_s=10,
    )
    values.update(overrides)
    return SmtpSettings(**values)  # type: ignore[arg-type]


def _report_email() -> tuple[dict, object]:
    document = build_report(sample_inputs())
    return document, compose_email(document, sender="tradepipe@example.com", recipients=["trader@example.com"])


def _assert_is_the_report(document: dict, received: object) -> None:
    message = received
    assert message["Subject"] == "tradepipe report main 2026-03-04 10:00..12:00 UTC"
    assert message["To"] == "trader@example.com"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "Equity 14,319.00 USDT" in text and "Agent momentum: Sharpe under 0.5" in text
    html_part = message.get_body(preferencelist=("html",))
    html = html_part.get_content()
    assert "<h2>Portfolio</h2>" in html
    images = {part["Content-ID"].strip("<>"): part for part in message.walk() if part.get_content_type() == "image/png"}
    assert len(images) == len(CHARTS)
    for cid, part in images.items():
        assert f'src="cid:{cid}"' in html, "every inline image is referenced by the HTML"
        assert part.get_content().startswith(b"\x89PNG")
        assert part.get_content_disposition() == "inline"
    attachments = [p for p in message.iter_attachments() if p.get_content_type() == "application/json"]
    assert len(attachments) == 1 and attachments[0].get_filename() == "report-main-2026-03-04T10.json"
    attached = json.loads(attachments[0].get_content())
    validate(attached)
    assert attached["portfolio"]["equity"] == document["portfolio"]["equity"]


def test_starttls_delivers_subject_html_text_inline_charts_and_json(starttls_server: SmtpServer) -> None:
    document, message = _report_email()
    settings = _settings(starttls_server)
    assert settings.security == "starttls"

    send_message(settings, message, ["trader@example.com"])

    assert len(starttls_server.mailbox.messages) == 1
    recipients, received = starttls_server.mailbox.messages[0]
    assert recipients == ["trader@example.com"]
    _assert_is_the_report(document, received)


def test_implicit_tls_delivers_the_same_email(implicit_tls_server: SmtpServer) -> None:
    document, message = _report_email()
    settings = _settings(implicit_tls_server, implicit_tls=True)
    assert settings.security == "implicit"

    send_message(settings, message, ["trader@example.com"])

    _assert_is_the_report(document, implicit_tls_server.mailbox.messages[0][1])


def test_security_follows_the_port() -> None:
    assert SmtpSettings(host="h", port=465).security == "implicit"
    assert SmtpSettings(host="h", port=587).security == "starttls"
    assert SmtpSettings(host="h", port=25, starttls=False).security == "none"


def test_bad_password_is_an_auth_error_that_never_shows_the_password(starttls_server: SmtpServer) -> None:
    _, message = _report_email()
    settings = _settings(starttls_server, password="wrong-" + PASSWORD)

    with pytest.raises(MailDeliveryError) as failure:
        send_message(settings, message, ["trader@example.com"])

    assert failure.value.kind == "auth"
    assert PASSWORD not in str(failure.value) and PASSWORD not in repr(settings)
    assert starttls_server.mailbox.messages == []


def test_untrusted_certificate_is_refused_before_credentials_are_sent(starttls_server: SmtpServer) -> None:
    _, message = _report_email()

    with pytest.raises(MailDeliveryError) as failure:
        send_message(_settings(starttls_server, ca_file=None), message, ["trader@example.com"])

    assert failure.value.kind == "tls"
    assert starttls_server.mailbox.messages == []


def test_refused_connection() -> None:
    _, message = _report_email()
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), user=USER, password=PASSWORD, timeout_s=5)

    with pytest.raises(MailDeliveryError) as failure:
        send_message(settings, message, ["trader@example.com"])

    assert failure.value.kind == "refused"
    assert "refused" in str(failure.value) and PASSWORD not in str(failure.value)


def test_a_relay_that_never_answers_times_out() -> None:
    import socket

    _, message = _report_email()
    with socket.socket() as silent:  # accepts the connection (kernel backlog) and never sends a greeting
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        settings = SmtpSettings(host="127.0.0.1", port=silent.getsockname()[1], user=USER, password=PASSWORD, timeout_s=0.5)
        with pytest.raises(MailDeliveryError) as failure:
            send_message(settings, message, ["trader@example.com"])
    assert failure.value.kind == "timeout"
    assert "did not answer within 0.5 s" in str(failure.value)


def test_the_mail_resource_holds_the_password_as_an_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from tradepipe.resources import build_resources
    from tradepipe.config.settings import load_settings

    monkeypatch.setenv("TRADEPIPE_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("TRADEPIPE_SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("TRADEPIPE_REPORT_RECIPIENTS", "a@example.org,b@example.org")
    mail = build_resources(load_settings())["mail"]
    assert isinstance(mail.password, dg.EnvVar) and mail.password == "TRADEPIPE_SMTP_PASSWORD"
    assert PASSWORD not in repr(mail) and PASSWORD not in str(mail.model_dump())
    assert mail.host == "smtp.example.org" and mail.recipients == ["a@example.org", "b@example.org"]
    # Unset here: the port and STARTTLS come from the stored email_config row, else 587 with STARTTLS.
    smtp, recipients = mail.model_copy(update={"password": "x"}).effective({"smtp_port": 2525, "use_starttls": False, "recipients": ["c@x.org"]})
    assert smtp is not None and (smtp.port, smtp.security) == (2525, "none") and recipients == ["a@example.org", "b@example.org"]
