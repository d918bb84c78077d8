import lxml.html

from sequent.mail.links import prepare_tracking

UNSUBSCRIBE = "https://app.acme.test/u/tok"


def click(index, url):
    return f"https://app.acme.test/c/{index}"


def hrefs(html):
    return [a.get("href") for a in lxml.html.fromstring(html).iter("a")]


def test_it_replaces_each_web_link_by_the_click_url_of_its_index():
    html = (
        "<html><body><p>See <a href='https://acme.test/a?x=1&amp;y=2'>pricing</a>,"
        " <a href='http://acme.test/b'>docs</a> and <a href='https://acme.test/a?x=1&amp;y=2'>again</a>.</p>"
        "</body></html>"
    )
    out, links = prepare_tracking(html, click_url_for=click, open_pixel_url=None)
    assert links == ["https://acme.test/a?x=1&y=2", "http://acme.test/b", "https://acme.test/a?x=1&y=2"]
    assert hrefs(out) == [
        "https://app.acme.test/c/0",
        "https://app.acme.test/c/1",
        "https://app.acme.test/c/2",
    ]
    assert "pricing" in out and "docs" in out


def test_it_leaves_mail_phone_anchor_and_unsubscribe_links_alone():
    html = (
        "<p><a href='mailto:sam@acme.test'>mail</a> <a href='tel:+14155550123'>call</a>"
        " <a href='#top'>top</a> <a>no href</a> <a href='javascript:void(0)'>js</a>"
        f" <a href='{UNSUBSCRIBE}'>unsubscribe</a> <a href=' HTTPS://acme.test/x '>x</a></p>"
    )
    out, links = prepare_tracking(html, click_url_for=click, open_pixel_url=None, keep_urls=[UNSUBSCRIBE])
    assert links == ["HTTPS://acme.test/x"]
    assert hrefs(out) == [
        "mailto:sam@acme.test",
        "tel:+14155550123",
        "#top",
        None,
        "javascript:void(0)",
        UNSUBSCRIBE,
        "https://app.acme.test/c/0",
    ]


def test_it_appends_a_one_pixel_image_at_the_end_of_the_body():
    html = "<!DOCTYPE html><html><head><title>t</title></head><body><p>Hi</p></body></html>"
    out, _ = prepare_tracking(html, click_url_for=None, open_pixel_url="https://app.acme.test/o/tok")
    body = lxml.html.document_fromstring(out).find("body")
    pixel = body[-1]
    assert pixel.tag == "img"
    assert pixel.get("src") == "https://app.acme.test/o/tok"
    assert (pixel.get("width"), pixel.get("height")) == ("1", "1")
    assert out.startswith("<!DOCTYPE html>")


def test_it_keeps_a_fragment_a_fragment_and_its_text_escaped():
    html = "Hi Dana &amp; team, <b>see</b> <a href='https://acme.test'>this</a> &lt;now&gt;"
    out, links = prepare_tracking(html, click_url_for=click, open_pixel_url="https://app.acme.test/o/t")
    assert out.startswith(
        'Hi Dana &amp; team, <b>see</b> <a href="https://app.acme.test/c/0">this</a> &lt;now&gt;'
    )
    assert "<html" not in out and "<body" not in out
    assert out.endswith(
        '<img src="https://app.acme.test/o/t" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;">'
    )
    assert links == ["https://acme.test"]


def test_it_lists_links_without_rewriting_when_clicks_are_not_tracked():
    html = "<p><a href='https://acme.test/a'>a</a></p>"
    out, links = prepare_tracking(html, click_url_for=None, open_pixel_url=None)
    assert links == ["https://acme.test/a"]
    assert hrefs(out) == ["https://acme.test/a"]


def test_it_is_not_fooled_by_link_lookalikes_in_text_and_comments():
    html = (
        "<p>Write href='https://evil.test' in text</p><!-- <a href='https://hidden.test'>x</a> -->"
        "<script>var a = '<a href=\"https://script.test\">';</script><a href=https://real.test>real</a>"
    )
    out, links = prepare_tracking(html, click_url_for=click, open_pixel_url=None)
    assert links == ["https://real.test"]
    assert "href='https://evil.test' in text" in out


def test_it_handles_an_empty_body():
    assert prepare_tracking("", click_url_for=click, open_pixel_url=None) == ("", [])
