"""Template filters of the mail pages: the links of a caught email's HTML, so the mail
catcher can list them as plain links beside the sandboxed frame."""

from __future__ import annotations

from html.parser import HTMLParser

from django import template

register = template.Library()

# A caught email is shown to its developer; a long newsletter still lists few links.
MAX_LINKS = 100


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href") or ""
            self._href = href.strip() if href.strip().lower().startswith(("http://", "https://")) else None
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            if len(self.links) < MAX_LINKS:
                self.links.append((self._href, " ".join("".join(self._text).split())))
            self._href = None


@register.filter
def email_links(html: str | None) -> list[tuple[str, str]]:
    """(url, link text) of each http(s) link of *html*, in order (at most 100)."""
    if not html:
        return []
    parser = _LinkParser()
    parser.feed(html)
    parser.close()
    return parser.links
