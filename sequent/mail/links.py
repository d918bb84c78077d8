"""Rewrite an email's HTML for tracking, with a real HTML parser (lxml).

Every http(s) ``<a href>`` becomes the click URL of its index (the index is the
link's position among tracked links, in document order); ``mailto:``, ``tel:``,
in-page anchors and the URLs given in ``keep_urls`` (the unsubscribe link) stay
as they are. An open pixel is appended at the end of the body when asked.
"""

from __future__ import annotations

import html as html_lib
from collections.abc import Callable, Collection

import lxml.html
from lxml.etree import ParserError

_TRACKED_SCHEMES = ("http://", "https://")


def _is_document(html: str) -> bool:
    head = html.lstrip()[:1024].lower()
    return head.startswith("<!doctype") or "<html" in head or "<body" in html.lower()


def _pixel(url: str) -> lxml.html.HtmlElement:
    return lxml.html.Element(
        "img",
        src=url,
        width="1",
        height="1",
        alt="",
        style="display:block;width:1px;height:1px;border:0;",
    )


def _rewrite(
    elements: list[lxml.html.HtmlElement],
    click_url_for: Callable[[int, str], str] | None,
    keep: set[str],
) -> list[str]:
    links: list[str] = []
    for root in elements:
        for anchor in root.iter("a"):
            href = (anchor.get("href") or "").strip()
            if not href.lower().startswith(_TRACKED_SCHEMES) or href in keep:
                continue
            index = len(links)
            links.append(href)
            if click_url_for is not None:
                anchor.set("href", click_url_for(index, href))
    return links


def prepare_tracking(
    html: str,
    *,
    click_url_for: Callable[[int, str], str] | None,
    open_pixel_url: str | None,
    keep_urls: Collection[str] = (),
) -> tuple[str, list[str]]:
    """The HTML with tracked links and pixel, and the original URL of each tracked link.

    ``links[i]`` is the URL that ``click_url_for(i, url)`` replaced; with
    ``click_url_for=None`` the links are listed but left unchanged.
    """
    keep = {url.strip() for url in keep_urls}
    if not html.strip():
        if open_pixel_url:
            return html + lxml.html.tostring(_pixel(open_pixel_url), encoding="unicode"), []
        return html, []

    if _is_document(html):
        doc = lxml.html.document_fromstring(html)
        links = _rewrite([doc], click_url_for, keep)
        if open_pixel_url:
            body = doc.find("body")
            (body if body is not None else doc).append(_pixel(open_pixel_url))
        doctype = doc.getroottree().docinfo.doctype or None
        return lxml.html.tostring(doc, encoding="unicode", doctype=doctype), links

    try:
        parts = lxml.html.fragments_fromstring(html)
    except ParserError:
        parts = [html]
    leading = parts[0] if parts and isinstance(parts[0], str) else ""
    elements = [part for part in parts if not isinstance(part, str)]
    links = _rewrite(elements, click_url_for, keep)
    out = [html_lib.escape(leading, quote=False)]
    out.extend(lxml.html.tostring(element, encoding="unicode") for element in elements)
    if open_pixel_url:
        out.append(lxml.html.tostring(_pixel(open_pixel_url), encoding="unicode"))
    return "".join(out), links
