"""The gallery and detail pages: <picture> from the API's documents (4:3 tiles in the gallery, the uncropped
ladder on the detail page) with `sizes` that match site.css, names for every link, descriptions for search
engines, compressed HTML; one DynamoDB Query a page, cursors, tags."""

from __future__ import annotations

import dataclasses
import gzip
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from gallery.templatetags import gallery_tags
from pipeline import keys, records
from pipeline.records import ImageRecord, Rendition, Status
from pipeline.store import ImageStore
from tests.conftest import ROOT

BASE_TIME = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
VERSION = keys.new_version()
LADDER = (320, 480, 640, 960, 1280, 1920)
TILES = ((256, 192), (384, 288), (560, 420), (840, 630), (1120, 840))
SITE_CSS = ROOT / "gallery" / "static" / "gallery" / "site.css"


def ready_record(
    n: int,
    *,
    tags: tuple[str, ...] = (),
    hidden: bool = False,
    title: str | None = None,
    alt_text: str | None = None,
    source: tuple[int, int] = (4000, 3000),
    webp_pays: bool = True,
    image_id: str | None = None,
) -> ImageRecord:
    """A processed photo as the processor leaves it: the uncropped ladder and the 4:3 tiles, each in JPEG and
    WebP (WebP 30% smaller, or 10% bigger with ``webp_pays=False``); ``n`` orders it (newest is the largest)."""
    image_id = image_id or keys.new_image_id()
    created = (BASE_TIME + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    processed = (BASE_TIME + timedelta(minutes=n, seconds=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    width, height = source
    sizes = [("optimized", w, round(w * height / width)) for w in LADDER if w <= width]
    sizes += [("thumb", w, h) for w, h in TILES if w <= width and h <= height]
    renditions = []
    for name, w, h in sizes:
        jpeg_bytes = w * h // 10
        for fmt, size in (("jpeg", jpeg_bytes), ("webp", int(jpeg_bytes * (0.7 if webp_pays else 1.1)))):
            key = keys.rendition_key(image_id, name, fmt, version=VERSION, width=w, height=h)
            renditions.append(Rendition(name, fmt, key, w, h, size))
    return (
        records.new_record(
            image_id, keys.raw_key_for_upload(image_id, f"IMG_{n:04d}.jpg"), Status.PROCESSING, at=created
        )
        .with_status(Status.READY, at=processed)
        .replace(
            byte_size=2_000_000 + n,
            sha256=f"{n:064x}",
            width=width,
            height=height,
            format="JPEG",
            renditions=tuple(renditions),
            processed_at=processed,
            blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj",
            dominant_color="#6a7b8c",
            title=f"Photo {n}" if title is None else title,
            alt_text=f"A test photo, number {n}" if alt_text is None else alt_text,
            tags=tags,
            hidden=hidden,
            source_sequencer=f"{n:016X}",
            source_etag=f'"{n:032x}"',
        )
    )


def seed(store: ImageStore, count: int, *, start: int = 0, tags: tuple[str, ...] = ()) -> list[str]:
    """``count`` ready images; returns their ids newest first (the gallery's order)."""
    ids = [store.create(ready_record(start + n, tags=tags)).id for n in range(count)]
    return ids[::-1]


@pytest.fixture
def store(site_aws):
    return site_aws.image_store()


@pytest.fixture
def dynamodb_calls(site_aws) -> list[str]:
    """The DynamoDB operations the app makes from the moment the fixture is requested."""
    calls: list[str] = []
    site_aws.dynamodb.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    return calls


def tiles(html: str) -> list[str]:
    """Image ids of the finished tiles, in page order."""
    return re.findall(r'<li class="tile">\s*<a class="tile__frame" href="/images/([a-z2-7]{26})/"', html)


def tile_links(html: str) -> dict[str, str]:
    """Each finished tile's link (id -> its HTML), which holds nothing but the picture."""
    found = re.findall(r'<a class="tile__frame" href="/images/([a-z2-7]{26})/">(.*?)</a>', html, re.S)
    return dict(found)


def img_tags(html: str) -> list[str]:
    return re.findall(r"<img [^>]*>", html, re.S)


def attribute(tag: str, name: str) -> str | None:
    match = re.search(rf'\s{name}="([^"]*)"', tag)
    return match.group(1).replace("&amp;", "&") if match else None


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'rel="{rel}" href="([^"]+)"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def url(site_aws, rendition: Rendition) -> str:
    return f"{site_aws.settings.cdn_url}/{keys.cdn_path(rendition.key)}"


def candidates(record: ImageRecord, site_aws, name: str, fmt: str) -> str:
    chosen = sorted((r for r in record.renditions if r.name == name and r.format == fmt), key=lambda r: r.width)
    return ", ".join(f"{url(site_aws, r)} {r.width}w" for r in chosen)


# -- gallery -------------------------------------------------------------------------------------------------


def test_gallery_tiles_offer_the_4_3_crops_as_webp_first_and_a_sized_jpeg_fallback(client, store, site_aws):
    record = store.create(ready_record(1, tags=("beach",)))
    fallback = next(r for r in record.renditions if (r.name, r.format, r.width) == ("thumb", "jpeg", 384))

    html = client.get("/").content.decode()

    (img,) = img_tags(html)
    assert f'<source type="image/webp" srcset="{candidates(record, site_aws, "thumb", "webp")}"' in html
    assert attribute(img, "srcset") == candidates(record, site_aws, "thumb", "jpeg")
    assert attribute(img, "src") == url(site_aws, fallback)
    assert (attribute(img, "width"), attribute(img, "height")) == ("384", "288")
    assert "/optimized/" not in html
    assert 'style="--placeholder: #6a7b8c"' in html
    assert 'data-blurhash="LEHV6nWB2yk8pyo0adR*.7kCMdnj"' in html


def test_gallery_offers_no_webp_source_when_no_webp_tile_is_smaller(client, store):
    store.create(ready_record(1, webp_pays=False))

    html = client.get("/").content.decode()

    assert 'type="image/webp"' not in html
    assert ".webp" not in html


def test_gallery_offers_avif_first_when_there_are_avif_tiles_that_are_smaller(client, store, site_aws):
    plain = ready_record(1)
    avif = tuple(
        r.replace(format="avif", key=r.key.rsplit(".", 1)[0] + ".avif", bytes=1)
        for r in plain.renditions
        if r.format == "jpeg"
    )
    record = store.create(plain.replace(renditions=(*plain.renditions, *avif)))

    html = client.get("/").content.decode()

    picture = html.split('<picture class="pic"', 1)[1].split("</picture>", 1)[0]
    assert picture.index('type="image/avif"') < picture.index('type="image/webp"') < picture.index("<img ")
    assert f'<source type="image/avif" srcset="{candidates(record, site_aws, "thumb", "avif")}"' in html


def test_tile_sizes_follow_the_grid_at_every_breakpoint(client, store):
    seed(store, 3)

    html = client.get("/").content.decode()

    sizes = {attribute(tag, "sizes") for tag in re.findall(r"<(?:img|source) [^>]*>", html, re.S)}
    assert sizes == {gallery_tags.tile_sizes()}
    assert gallery_tags.tile_sizes() == (
        "(max-width: 520px) calc(50vw - 16px), (max-width: 840px) calc(33.33vw - 21.33px), "
        "(max-width: 960px) calc(25vw - 19px), (max-width: 1200px) calc(25vw - 27.5px), 272.5px"
    )
    assert 'data-sizes="' in html  # for the tiles gallery.js draws when an upload is ready


def test_the_layout_numbers_in_sizes_are_the_ones_in_site_css():
    css = SITE_CSS.read_text()

    def declared(selector: str, prop: str) -> dict[int | None, str]:
        """{max-width of the enclosing @media (None outside any): value} for ``selector { ... prop: value }``."""
        found = {}
        pattern = rf"(?:@media \(max-width: (\d+)px\) {{[^@}}]*?)?{re.escape(selector)} {{([^}}]*)}}"
        for match in re.finditer(pattern, css):
            value = re.search(rf"(?:^|;)\s*{prop}:\s*([^;]+?)\s*(?:;|$)", match.group(2))
            if value:
                found[int(match.group(1)) if match.group(1) else None] = value.group(1)
        return found

    assert declared(".wrap", "padding-inline") == {limit: f"{px}px" for limit, px in gallery_tags.PADDING}
    assert declared(".grid", "gap") == {limit: f"{px}px" for limit, px in gallery_tags.GAP}
    assert declared(".grid", "grid-template-columns") == {
        limit: f"repeat({n}, minmax(0, 1fr))" for limit, n in gallery_tags.COLUMNS
    }
    two_columns = f"@media (min-width: {gallery_tags.DETAIL_TWO_COLUMNS + 1}px) {{ .detail {{ grid-template-columns: "
    assert f"{two_columns}minmax(0, 1fr) {gallery_tags.DETAIL_ASIDE}px; }}" in css
    assert f"gap: 1.25rem {gallery_tags.DETAIL_GAP}px" in css
    assert f"--wrap: {gallery_tags.WRAP}px" in css
    assert f"calc({gallery_tags.DETAIL_MAX_HEIGHT_VH}vh * var(--aspect" in css


def test_the_first_tile_is_fetched_first_the_first_row_eagerly_and_the_rest_lazily(client, store):
    seed(store, 10)

    html = client.get("/").content.decode()

    images = img_tags(html)
    assert [attribute(img, "loading") for img in images] == ["eager"] * 4 + ["lazy"] * 6
    assert [attribute(img, "fetchpriority") for img in images] == ["high"] + [None] * 9


def test_a_tile_link_is_named_by_alt_text_else_title_else_the_upload_date(client, store):
    described = store.create(ready_record(1, title="Harbour", alt_text="Boats in a harbour at dusk"))
    titled = store.create(ready_record(2, title="Harbour at night", alt_text=""))
    anonymous = store.create(ready_record(3, title="", alt_text=""))

    links = tile_links(client.get("/").content.decode())

    names = {image_id: attribute(img_tags(html)[0], "alt") for image_id, html in links.items()}
    assert names == {
        described.id: "Boats in a harbour at dusk",
        titled.id: "Harbour at night",
        anonymous.id: "Photo uploaded 1 Nov 2026",
    }
    assert all(re.fullmatch(r"\s*<picture .*</picture>\s*", html, re.S) for html in links.values())


def test_the_logo_link_has_a_name_that_small_screens_hide_only_visually(client, store):
    html = client.get("/").content.decode()
    css = SITE_CSS.read_text()

    brand = re.search(r'<a class="brand" href="/">(.*?)</a>', html, re.S).group(1)
    assert re.sub(r"<[^>]+>", "", brand).strip() == "Photo pipeline"
    assert not re.search(r"\.brand__text \{[^}]*display: none", css)


def test_the_footer_link_is_underlined(client, store):
    assert re.search(r"\.site-footer a \{[^}]*text-decoration: underline", SITE_CSS.read_text())
    assert '<a href="/api/images">JSON API</a>' in client.get("/").content.decode()


def test_gallery_lists_newest_first_and_a_page_costs_one_query(client, store, dynamodb_calls):
    ids = seed(store, 30)
    dynamodb_calls.clear()

    html = client.get("/").content.decode()

    assert tiles(html) == ids[:24]
    assert dynamodb_calls == ["Query"]


def test_gallery_of_someone_with_uploads_in_flight_still_costs_one_query(
    client, store, dynamodb_calls, django_user_model
):
    client.force_login(django_user_model.objects.create_user("alice"))
    seed(store, 3)
    ticket = client.post(
        "/upload/policy/", {"name": "a.jpg", "size": 10, "type": "image/jpeg"}, content_type="application/json"
    ).json()
    client.get(ticket["done_url"])
    dynamodb_calls.clear()

    client.get("/")

    assert dynamodb_calls == ["Query"]


def test_older_and_newer_walk_the_pages_and_back(client, store):
    ids = seed(store, 53)

    first = client.get("/").content.decode()
    second = client.get(link(first, "next")).content.decode()
    third = client.get(link(second, "next")).content.decode()
    back_to_second = client.get(link(third, "prev")).content.decode()
    back_to_first = client.get(link(back_to_second, "prev")).content.decode()

    assert tiles(first) + tiles(second) + tiles(third) == ids
    assert link(first, "prev") is None
    assert link(third, "next") is None
    assert tiles(back_to_second) == tiles(second)
    assert tiles(back_to_first) == tiles(first)
    assert link(second, "prev") == "/"


def test_tag_links_filter_the_gallery_and_pages_keep_the_tag(client, store):
    beach = seed(store, 26, tags=("beach",))
    seed(store, 5, start=100, tags=("city",))

    html = client.get("/", {"tag": "Beach"}).content.decode()
    second = client.get(link(html, "next")).content.decode()

    assert tiles(html) + tiles(second) == beach
    assert '<a class="tag" href="/?tag=beach">beach</a>' in html
    assert "tag=beach" in link(html, "next")


def test_a_malformed_cursor_is_a_400_page(client, store):
    seed(store, 2)

    response = client.get("/", {"cursor": "not-a-cursor"})

    assert response.status_code == 400
    assert "cursor" in response.content.decode()


def test_a_cursor_of_another_tag_is_a_400_page(client, store):
    seed(store, 30, tags=("beach",))
    cursor_for_beach = link(client.get("/", {"tag": "beach"}).content.decode(), "next").split("cursor=")[1]

    response = client.get("/", {"cursor": cursor_for_beach.split("&")[0]})

    assert response.status_code == 400


def test_empty_gallery_invites_an_upload(client, store):
    html = client.get("/").content.decode()

    assert "No photos yet." in html
    assert 'href="/upload/"' in html


def test_own_upload_shows_as_a_processing_tile_until_it_is_listed(client, store, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice"))
    ticket = client.post(
        "/upload/policy/", {"name": "a.jpg", "size": 10, "type": "image/jpeg"}, content_type="application/json"
    ).json()
    client.get(ticket["done_url"])

    while_processing = client.get("/").content.decode()
    store.update(ticket["id"], lambda current: ready_record(1, image_id=current.id))
    once_ready = client.get("/").content.decode()

    assert f'data-poll="/api/images/{ticket["id"]}"' in while_processing
    assert "tile--processing" in while_processing
    assert "tile--processing" not in once_ready
    assert tiles(once_ready) == [ticket["id"]]


def test_other_people_do_not_see_someone_elses_processing_tile(client, store, django_user_model):
    client.force_login(django_user_model.objects.create_user("alice"))
    ticket = client.post(
        "/upload/policy/", {"name": "a.jpg", "size": 10, "type": "image/jpeg"}, content_type="application/json"
    ).json()
    client.get(ticket["done_url"])
    client.logout()

    html = client.get("/").content.decode()

    assert ticket["id"] not in html


def test_header_offers_admin_only_to_staff(client, store, django_user_model):
    anonymous = client.get("/").content.decode()
    client.force_login(django_user_model.objects.create_user("alice"))
    person = client.get("/").content.decode()
    client.force_login(django_user_model.objects.create_user("sam", is_staff=True))
    staff = client.get("/").content.decode()

    assert 'href="/accounts/login/' in anonymous
    assert 'href="/admin/"' not in person
    assert "Log out" in person
    assert 'href="/admin/"' in staff


# -- detail --------------------------------------------------------------------------------------------------


def test_detail_page_shows_the_uncropped_ladder_and_the_facts(client, store, site_aws):
    record = store.create(ready_record(7, tags=("beach", "sunset")))
    widest = next(r for r in record.renditions if (r.name, r.format, r.width) == ("optimized", "jpeg", 1920))

    html = client.get(f"/images/{record.id}/").content.decode()

    (img,) = img_tags(html)
    assert f'<source type="image/webp" srcset="{candidates(record, site_aws, "optimized", "webp")}"' in html
    assert attribute(img, "srcset") == candidates(record, site_aws, "optimized", "jpeg")
    assert attribute(img, "src") == url(site_aws, widest)
    assert (attribute(img, "width"), attribute(img, "height")) == ("1920", "1440")
    assert (attribute(img, "loading"), attribute(img, "fetchpriority")) == ("eager", "high")
    assert "<h1>Photo 7</h1>" in html
    assert "A test photo, number 7" in html
    assert '<a class="tag" href="/?tag=sunset">sunset</a>' in html
    assert "4000 \u00d7 3000 px" in html
    assert "JPEG" in html
    assert "1.9\xa0MB" in html
    assert "1 Nov 2026, 09:07" in html


@pytest.mark.parametrize(
    ("source", "capped_at", "aspect"), [((4000, 3000), "106.67vh", "1.3333"), ((2000, 3000), "53.33vh", "0.6667")]
)
def test_detail_sizes_are_the_column_or_less_when_the_height_cap_binds(client, store, source, capped_at, aspect):
    record = store.create(ready_record(1, source=source))

    html = client.get(f"/images/{record.id}/").content.decode()

    sizes = attribute(img_tags(html)[0], "sizes")
    assert sizes == gallery_tags.detail_sizes(*source)
    assert sizes == (
        f"(max-width: 520px) min(100vw - 24px, {capped_at}), (max-width: 960px) min(100vw - 40px, {capped_at}), "
        f"(max-width: 1200px) min(100vw - 408px, {capped_at}), min(792px, {capped_at})"
    )
    assert f'<figure class="detail__figure" style="--aspect: {aspect}">' in html


def test_detail_page_offers_no_webp_when_no_webp_rung_is_smaller(client, store, site_aws):
    record = ready_record(8)
    bigger_webp = tuple(
        dataclasses.replace(r, bytes=r.bytes * 2) if (r.name, r.format) == ("optimized", "webp") else r
        for r in record.renditions
    )
    kept = store.create(record.replace(renditions=bigger_webp))
    usual = store.create(ready_record(9))

    kept_html = client.get(f"/images/{kept.id}/").content.decode()
    usual_html = client.get(f"/images/{usual.id}/").content.decode()

    assert 'type="image/webp"' not in kept_html
    assert attribute(img_tags(kept_html)[0], "srcset") == candidates(kept, site_aws, "optimized", "jpeg")
    assert 'type="image/webp"' in usual_html
    # The gallery's tiles are other renditions, whose WebP is the smaller one here.
    assert client.get("/").content.decode().count('type="image/webp"') == 2


# -- every page ----------------------------------------------------------------------------------------------


def description(html: str) -> str | None:
    match = re.search(r'<meta name="description" content="([^"]+)">', html)
    return match.group(1) if match else None


def test_every_public_page_has_a_meta_description(client, store, django_user_model):
    record = store.create(ready_record(1, tags=("beach",)))
    anonymous = {path: client.get(path) for path in ("/", "/?tag=beach", f"/images/{record.id}/", "/accounts/login/")}
    missing = client.get(f"/images/{keys.new_image_id()}/")
    client.force_login(django_user_model.objects.create_user("alice"))
    upload = client.get("/upload/")

    for path, response in {**anonymous, "404": missing, "/upload/": upload}.items():
        assert description(response.content.decode()), f"{path} has no meta description"
    assert "beach" in description(anonymous["/?tag=beach"].content.decode())
    assert description(anonymous[f"/images/{record.id}/"].content.decode()).startswith("A test photo, number 1")


@pytest.mark.parametrize(("path", "logged_in"), [("/", False), ("/accounts/login/", False), ("/upload/", True)])
def test_pages_are_gzipped_for_browsers_that_accept_it(client, store, django_user_model, path, logged_in):
    seed(store, 3)
    if logged_in:
        client.force_login(django_user_model.objects.create_user("alice"))

    plain = client.get(path)
    compressed = client.get(path, HTTP_ACCEPT_ENCODING="gzip, deflate, br")

    assert (plain.status_code, compressed.status_code) == (200, 200)
    assert plain.get("Content-Encoding") is None
    assert compressed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in compressed["Vary"]
    assert gzip.decompress(compressed.content).decode().startswith("<!doctype html>")
    assert len(compressed.content) < len(plain.content)


@override_settings(DEBUG=True)
def test_static_css_and_js_are_gzipped_too(client):
    for path in ("/static/gallery/site.css", "/static/gallery/gallery.js", "/static/gallery/upload.js"):
        response = client.get(path, HTTP_ACCEPT_ENCODING="gzip")

        assert response["Content-Encoding"] == "gzip", path
        assert len(gzip.decompress(b"".join(response.streaming_content))) > 1000, path


def test_detail_page_costs_one_read(client, store, dynamodb_calls):
    record = store.create(ready_record(1))
    dynamodb_calls.clear()

    client.get(f"/images/{record.id}/")

    assert dynamodb_calls == ["GetItem"]


def test_detail_of_an_image_still_processing_polls_until_ready(client, store):
    image_id = keys.new_image_id()
    store.create(records.new_record(image_id, keys.raw_key_for_upload(image_id, "a.jpg"), Status.PROCESSING))

    html = client.get(f"/images/{image_id}/").content.decode()

    assert "Processing…" in html
    assert f'data-poll="/api/images/{image_id}"' in html


def test_detail_of_a_failed_image_says_why(client, store):
    image_id = keys.new_image_id()
    failed = records.new_record(image_id, keys.raw_key_for_upload(image_id, "a.jpg"), Status.PROCESSING).with_status(
        Status.FAILED, reason="The file is not an image (it looks like text)."
    )
    store.create(failed)

    html = client.get(f"/images/{image_id}/").content.decode()

    assert "could not be processed" in html
    assert "The file is not an image (it looks like text)." in html


@pytest.mark.parametrize("image_id", [keys.new_image_id(), "not-an-id"])
def test_unknown_or_malformed_image_id_is_a_404_page(client, store, image_id):
    response = client.get(f"/images/{image_id}/")

    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_hidden_image_is_a_404_page_and_not_in_the_gallery(client, store):
    record = store.create(ready_record(1, hidden=True))

    assert client.get(f"/images/{record.id}/").status_code == 404
    assert record.id not in client.get("/").content.decode()
