"""The report document rendered as JSON (validated against the schema), HTML, plain text and an email.

HTML comes from one jinja2 template with autoescaping on: every string from the document (agent,
symbol, reason, error) is escaped, and charts are images (``data:`` URIs in the file, ``cid:`` parts in
the email), so nothing from the data can reach a script or markup context.
"""

from __future__ import annotations

import base64
import json
import math
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping, Sequence

import jinja2
from markupsafe import Markup

from tradepipe.reports.charts import CHARTS, TITLES, render_charts

SCHEMA_FILE = "report.schema.json"


class ReportSchemaError(ValueError):
    """The document does not match report.schema.json (a bug in the report builder, never silent)."""


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("tradepipe.reports").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema  # type: ignore[import-untyped]  # imported here: a second of import time nobody on the trading path should pay

    return jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker())


def validate(document: Mapping[str, Any]) -> None:
    errors = sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        raise ReportSchemaError(f"report does not match {SCHEMA_FILE} at {where}: {first.message} ({len(errors)} errors)")


def render_json(document: Mapping[str, Any]) -> str:
    """The validated document as JSON text (NaN is not JSON: the builder emits null instead)."""
    validate(document)
    return json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False)


def _num(value: float | None, digits: int = 2) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value * 100:.1f}%"


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+,.2f}"


def _sign(value: float | None) -> str:
    return "" if not value else ("pos" if value > 0 else "neg")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("tradepipe.reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def title_of(document: Mapping[str, Any]) -> str:
    meta = document["report"]
    return f"tradepipe report {meta['book']} {meta['window_start'][:16].replace('T', ' ')}..{meta['window_end'][11:16]} UTC"


def render_html(document: Mapping[str, Any], image_sources: Mapping[str, str]) -> str:
    """The report page; ``image_sources`` maps each chart name to its ``src`` (a data: URI or cid:)."""
    currency = document["report"]["quote_currency"]

    def chart(name: str) -> Markup:
        src = image_sources.get(name)
        if src is None:
            return Markup("")
        return Markup('<img class="chart" alt="{}" src="{}">').format(TITLES[name], src)

    return _environment().get_template("report.html.j2").render(
        doc=document,
        title=title_of(document),
        meta=document["report"],
        portfolio=document["portfolio"],
        activity=document["activity"],
        agents=document["agents"],
        weights=document["weights"],
        health=document["health"],
        chart=chart,
        num=_num,
        pct=_pct,
        signed=_signed,
        sign=_sign,
        money=lambda v: f"{_num(v)} {currency}",
    )


def data_uris(svgs: Mapping[str, bytes]) -> dict[str, str]:
    return {name: "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii") for name, svg in svgs.items()}


def render_standalone_html(document: Mapping[str, Any], svgs: Mapping[str, bytes] | None = None) -> str:
    """One self-contained file: charts inline as SVG data URIs (``svgs``, else drawn now), CSS inline, nothing fetched."""
    return render_html(document, data_uris(svgs if svgs is not None else render_charts(dict(document), "svg")))


def render_text(document: Mapping[str, Any]) -> str:
    """The plain-text part of the email: the summary, tasks and recommendations with their numbers."""
    lines = [title_of(document), "", document["summary"].replace("**", ""), ""]
    if document["tasks"]:
        lines.append("Open tasks:")
        lines += [f"  #{t['id']} P{t['priority']} [{t['status']}] {t['title']}" for t in document["tasks"]]
        lines.append("")
    if document["recommendations"]:
        lines.append("Recommendations:")
        for r in document["recommendations"]:
            lines += [f"  P{r['priority']} {r['title']}", f"     {r['detail']}"]
        lines.append("")
    lines.append("The HTML part has the charts; the JSON attachment has every figure.")
    return "\n".join(lines)


def compose_email(
    document: Mapping[str, Any],
    *,
    sender: str,
    recipients: Sequence[str],
    json_text: str | None = None,
    pngs: Mapping[str, bytes] | None = None,
) -> EmailMessage:
    """multipart/mixed: (text | HTML with the charts as inline CID images) and the JSON attachment."""
    pngs = pngs if pngs is not None else render_charts(dict(document), "png")
    json_text = json_text if json_text is not None else render_json(document)
    domain = sender.rpartition("@")[2] or "tradepipe.local"
    cids = {name: make_msgid(idstring=name, domain=domain) for name in CHARTS if name in pngs}
    message = EmailMessage()
    message["Subject"] = title_of(document)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(idstring="report", domain=domain)
    message.set_content(render_text(document))
    html = render_html(document, {name: "cid:" + cid[1:-1] for name, cid in cids.items()})
    message.add_alternative(html, subtype="html")
    html_part: EmailMessage = message.get_payload()[1]  # type: ignore[index,assignment]
    for name, cid in cids.items():
        html_part.add_related(pngs[name], maintype="image", subtype="png", cid=cid, disposition="inline", filename=f"{name}.png")
    meta = document["report"]
    filename = f"report-{meta['book']}-{meta['window_start'][:13].replace(':', '')}.json"
    message.add_attachment(json_text.encode("utf-8"), maintype="application", subtype="json", filename=filename)
    return message
