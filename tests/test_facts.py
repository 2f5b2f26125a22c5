"""Photo facts: the date taken, camera and (only with KEEP_LOCATION, privately) GPS read from the upload's EXIF/XMP
before it is stripped, through the CLI, the imaging entry point and the processor Lambda on moto; never a location
in a public answer or a rendition."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from conftest import HOSTILE, PHOTOS, ROOT
from PIL import Image, PngImagePlugin
from test_api import get
from test_processor import ProcessorEvents, deliver, record_for

from lambdas.image_api import handler as image_api
from lambdas.image_processor import handler as processor_lambda
from pipeline import reprocess
from pipeline.config import ImagingSettings
from pipeline.imaging import process_image
from pipeline.processing import ImageProcessor
from pipeline.records import Status

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATE_TIME_ORIGINAL, OFFSET_TIME_ORIGINAL = 36867, 36881
MAKE, MODEL = 271, 272
# Worked out by hand from the files' GPS IFDs (degrees + minutes/60 + seconds/3600, W and S negative).
KNOWN_LOCATIONS = {
    "DSCN0010.jpg": (43.46745, 11.88513),
    "DSCN0021.jpg": (43.46708, 11.88454),
    "iphone_hdr_NO.jpg": (40.44697, -3.72475),
    "HMD_Nokia_8.3_5G.jpg": (60.14671, 24.90677),
}


def corpus_photos() -> list[Path]:
    return sorted(path for path in PHOTOS.iterdir() if path.is_file() and not path.name.startswith("."))


def written_by_the_camera(path: Path) -> tuple[str, str, str] | None:
    """(DateTimeOriginal, OffsetTimeOriginal or "", Model) as Pillow reads them, or None without a date taken."""
    with Image.open(path) as image:
        exif = image.getexif()
        details = exif.get_ifd(EXIF_IFD)
        if not details.get(DATE_TIME_ORIGINAL):
            return None
        return details[DATE_TIME_ORIGINAL], details.get(OFFSET_TIME_ORIGINAL, ""), exif.get(MODEL, "")


def cli(*args: str, env: dict[str, str] | None = None) -> list[dict]:
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    return [json.loads(line) for line in completed.stdout.splitlines()]


def with_exif(fmt: str, **save: object) -> bytes:
    """A small generated photo in ``fmt`` whose EXIF says a Canon took it on 5 June 2021, 14:03:22 at +02:00."""
    exif = Image.Exif()
    exif[MAKE] = "Canon"
    exif[MODEL] = "Canon EOS R5"
    details = exif.get_ifd(EXIF_IFD)
    details[DATE_TIME_ORIGINAL] = "2021:06:05 14:03:22"
    details[OFFSET_TIME_ORIGINAL] = "+02:00"
    details[33437] = 1.8  # FNumber
    details[34855] = 100  # ISO
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 80, 40)).save(out, fmt, exif=exif, **save)
    return out.getvalue()


def facts_of(data: bytes, **settings: object):
    return process_image(data, ImagingSettings(**settings)).facts


# -- the CLI -------------------------------------------------------------------------------------------------


def test_cli_reports_date_taken_and_camera_model_of_every_corpus_photo_that_has_them(tmp_path):
    reports = {Path(line["file"]).name: line["facts"] for line in cli(str(PHOTOS), "--out", str(tmp_path))}

    dated = 0
    for path in corpus_photos():
        facts = reports[path.name]
        assert "location" not in facts, path.name
        written = written_by_the_camera(path)
        if written is None:
            assert facts["taken_at"] is None, path.name
            continue
        dated += 1
        date, offset, model = written
        expected = datetime.strptime(date, "%Y:%m:%d %H:%M:%S").isoformat() + offset
        assert facts["taken_at"] == expected, path.name
        assert facts["camera"]["model"], path.name
        assert model.strip().endswith(facts["camera"]["model"]), path.name  # the make may be dropped from it
    assert dated >= 9  # the cameras and the iPhone HEIC: what makes this test mean something


def test_cli_shows_the_camera_as_known_values_only(tmp_path):
    (report,) = cli(str(PHOTOS / "Canon_40D.jpg"), "--out", str(tmp_path))

    assert report["facts"]["taken_at"] == "2008-05-30T15:56:01"
    assert report["facts"]["camera"] == {
        "make": "Canon",
        "model": "EOS 40D",
        "focal_length": "135",
        "f_number": "7.1",
        "exposure_time": "1/160",
        "iso": 100,
    }


def test_cli_prints_a_location_only_with_keep_location(tmp_path):
    files = [str(PHOTOS / "DSCN0010.jpg"), str(PHOTOS / "Landscape_0.jpg"), "--out", str(tmp_path)]

    kept = {Path(line["file"]).name: line["facts"] for line in cli(*files, env={"KEEP_LOCATION": "on"})}
    default = cli(*files)

    latitude, longitude = KNOWN_LOCATIONS["DSCN0010.jpg"]
    location = kept["DSCN0010.jpg"]["location"]
    assert abs(float(location["latitude"]) - latitude) < 1e-4
    assert abs(float(location["longitude"]) - longitude) < 1e-4
    assert kept["Landscape_0.jpg"]["location"] is None
    assert all("location" not in line["facts"] for line in default)


# -- formats and odd metadata ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "save"), [("PNG", {}), ("WEBP", {"quality": 80}), ("AVIF", {}), ("JPEG", {})])
def test_exif_chunks_of_png_webp_avif_and_jpeg_give_their_facts(fmt, save):
    facts = facts_of(with_exif(fmt, **save))

    assert facts.taken_at == "2021-06-05T14:03:22+02:00"
    assert facts.camera.to_dict() == {"make": "Canon", "model": "EOS R5", "f_number": "1.8", "iso": 100}


def test_the_iphone_heic_gives_its_facts_and_lens():
    facts = facts_of((PHOTOS / "iphone_13_pro_max.heic").read_bytes())

    assert facts.taken_at == "2022-02-16T12:55:41+01:00"
    assert (facts.camera.make, facts.camera.model) == ("Apple", "iPhone 13 Pro Max")
    assert facts.camera.lens == "iPhone 13 Pro Max back triple camera 5.7mm f/1.5"
    assert (facts.camera.f_number, facts.camera.exposure_time, facts.camera.iso) == ("1.5", "1/60", 250)


def test_xmp_gives_the_date_taken_when_exif_has_none():
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreateDate="2019-07-01T08:15:00+09:00"/>'
        b'<rdf:Description xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/">'
        b"<photoshop:DateCreated>2019-07-01T09:30:10.25Z</photoshop:DateCreated></rdf:Description>"
        b"</rdf:RDF></x:xmpmeta>"
    )
    jpeg, png = io.BytesIO(), io.BytesIO()
    picture = Image.new("RGB", (40, 30), "teal")
    picture.save(jpeg, "JPEG", xmp=xmp)
    text = PngImagePlugin.PngInfo()
    text.add_itxt("XML:com.adobe.xmp", xmp.decode())
    picture.save(png, "PNG", pnginfo=text)

    # photoshop:DateCreated comes before xmp:CreateDate (exif:DateTimeOriginal would come first of all).
    assert facts_of(jpeg.getvalue()).taken_at == "2019-07-01T09:30:10+00:00"
    assert facts_of(png.getvalue()).taken_at == "2019-07-01T09:30:10+00:00"


@pytest.mark.parametrize(
    ("date", "offset"),
    [
        ("0000:00:00 00:00:00", "+02:00"),
        ("    :  :     :  :  ", ""),
        ("2021:13:45 25:61:00", ""),
        ("9999:12:31 23:59:59", ""),
        ("yesterday", ""),
    ],
)
def test_an_absurd_date_taken_is_simply_absent(date, offset):
    exif = Image.Exif()
    exif[MAKE] = "Nikon"
    exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = date
    exif.get_ifd(EXIF_IFD)[OFFSET_TIME_ORIGINAL] = offset
    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, "JPEG", exif=exif)

    facts = facts_of(out.getvalue())

    assert facts.taken_at is None
    assert facts.camera.make == "Nikon"


def test_garbage_exif_values_are_left_out_and_the_rest_kept():
    exif = Image.Exif()
    exif[MAKE] = "Acme\x00\x00\x00   "
    exif[MODEL] = "x" * 5000  # no model is this long
    details = exif.get_ifd(EXIF_IFD)
    details[DATE_TIME_ORIGINAL] = "2020:02:29 12:00:00\x00"
    details[OFFSET_TIME_ORIGINAL] = "+99:99"  # no such time zone: the local time is kept without it
    details[33437] = 0.0  # FNumber 0
    details[33434] = float("nan")  # ExposureTime 0/0
    details[34855] = 0  # ISO 0
    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, "JPEG", exif=exif)

    facts = facts_of(out.getvalue())

    assert facts.taken_at == "2020-02-29T12:00:00"
    assert facts.camera.to_dict() == {"make": "Acme"}


@pytest.mark.parametrize("name", ["made-huge-exif-orient6.jpg", "app13-multiple.jpg", "sugarshack.mpo"])
def test_hostile_metadata_never_fails_an_upload(name):
    facts = facts_of((HOSTILE / name).read_bytes())

    assert facts.width > 0
    assert facts.location is None


def test_gps_is_not_even_read_without_keep_location():
    source = (PHOTOS / "DSCN0010.jpg").read_bytes()

    assert facts_of(source).location is None
    assert facts_of(source, keep_location=True).location is not None


# -- the processor on moto, KEEP_LOCATION on -------------------------------------------------------------------


@pytest.fixture
def events(aws, pipeline_settings, monkeypatch) -> ProcessorEvents:
    """The processor Lambda and the read API Lambda wired to this test's moto and settings."""
    processor = ImageProcessor(pipeline_settings, aws.image_store(), aws.object_store())
    monkeypatch.setattr(processor_lambda, "processor", processor)
    monkeypatch.setattr(image_api, "aws", aws)
    monkeypatch.setattr(image_api, "settings", pipeline_settings)
    return ProcessorEvents(aws.s3, pipeline_settings.bucket)


@pytest.mark.parametrize("settings_env", [{"KEEP_LOCATION": "1"}])
def test_kept_locations_are_in_the_record_and_in_no_public_answer_or_rendition(
    events, aws, pipeline_settings, site_aws, client
):
    records = {}
    for path in corpus_photos():
        deliver(events.put(f"raw/{path.name}", path), events)
        records[path.name] = record_for(aws, pipeline_settings, f"raw/{path.name}")
        assert records[path.name].status is Status.READY, path.name

    located = {name: record.location for name, record in records.items() if record.location}
    assert set(located) >= set(KNOWN_LOCATIONS)
    for name, (latitude, longitude) in KNOWN_LOCATIONS.items():
        assert abs(float(located[name].latitude) - latitude) < 1e-4, name
        assert abs(float(located[name].longitude) - longitude) < 1e-4, name
    # What must never show: the key, and each position's digits as stored.
    secrets = [r"location|latitude|longitude|altitude|GPS"] + [re.escape(loc.latitude[:6]) for loc in located.values()]
    forbidden = re.compile("|".join(secrets), re.IGNORECASE)

    public: dict[str, str] = {
        "lambda list": get("/images", query={"limit": "100"}).text,
        "lambda list by taken": get("/images", query={"limit": "100", "sort": "taken"}).text,
        "django list": client.get("/api/images", {"limit": "100"}).content.decode(),
        "gallery": client.get("/").content.decode(),
        "gallery by taken": client.get("/", {"sort": "taken"}).content.decode(),
    }
    for name, record in records.items():
        public[f"lambda {name}"] = get(f"/images/{record.id}").text
        public[f"django {name}"] = client.get(f"/api/images/{record.id}").content.decode()
        public[f"detail {name}"] = client.get(f"/images/{record.id}/").content.decode()
    for where, text in public.items():
        assert not forbidden.search(text), where
    assert json.loads(public["lambda DSCN0010.jpg"])["taken_at"] == "2008-10-22T16:28:39"

    for record in (records[name] for name in located):
        for rendition in record.renditions:
            body = aws.s3.get_object(Bucket=pipeline_settings.bucket, Key=rendition.key)["Body"].read()
            with Image.open(io.BytesIO(body)) as image:
                assert not image.getexif(), rendition.key
                assert "exif" not in image.info, rendition.key
                assert "xmp" not in image.info, rendition.key
            assert b"Exif\x00\x00" not in body, rendition.key


# -- the detail page -----------------------------------------------------------------------------------------


def test_the_detail_page_shows_the_public_facts_in_its_list(events, aws, pipeline_settings, site_aws, client):
    deliver(events.put("raw/iphone_13_pro_max.heic", PHOTOS / "iphone_13_pro_max.heic"), events)
    deliver(events.put("raw/Landscape_0.jpg", PHOTOS / "Landscape_0.jpg"), events)
    iphone = record_for(aws, pipeline_settings, "raw/iphone_13_pro_max.heic")
    undated = record_for(aws, pipeline_settings, "raw/Landscape_0.jpg")

    html = client.get(f"/images/{iphone.id}/").content.decode()
    bare = client.get(f"/images/{undated.id}/").content.decode()

    facts = dict(re.findall(r"<div><dt>([^<]+)</dt><dd>(.*?)</dd></div>", html))
    assert facts["Taken"] == '<time datetime="2022-02-16T12:55:41+01:00">16 February 2022, 12:55</time>'
    assert facts["Camera"] == "Apple iPhone 13 Pro Max"
    assert facts["Lens"] == "iPhone 13 Pro Max back triple camera 5.7mm f/1.5"
    assert facts["Exposure"] == "f/1.5 · 1/60 s · 5.7 mm · ISO 250"
    for label in ("Taken", "Camera", "Lens", "Exposure"):
        assert f"<dt>{label}</dt>" not in bare


# -- reprocessing ---------------------------------------------------------------------------------------------


def test_reprocessing_an_image_made_before_facts_gives_it_its_facts(events, aws, pipeline_settings):
    deliver(events.put("raw/DSCN0021.jpg", PHOTOS / "DSCN0021.jpg"), events)
    deliver(events.put("raw/Portrait_0.jpg", PHOTOS / "Portrait_0.jpg"), events)
    store = aws.image_store()
    old = record_for(aws, pipeline_settings, "raw/DSCN0021.jpg")
    undated = record_for(aws, pipeline_settings, "raw/Portrait_0.jpg")
    # As the processor wrote records before photo facts existed.
    store.update(old.id, lambda current: current.replace(taken_at=None, camera=None))
    assert get("/images", query={"sort": "taken"}).json["items"][0]["id"] == undated.id  # newer upload, undated
    assert get(f"/images/{old.id}").json["taken_at"] is None

    code = reprocess.main(["--all"], aws=aws, sleep=lambda _: None, out=io.StringIO())
    deliver(events.announced(old.raw_key), events)  # the touch's own ObjectCreated event

    again = store.get(old.id, consistent=True)
    assert code == 0
    assert again.taken_at == "2008-10-22T16:38:20"
    assert (again.camera.make, again.camera.model) == ("NIKON", "COOLPIX P6000")
    assert [item["id"] for item in get("/images", query={"sort": "taken"}).json["items"]] == [old.id, undated.id]
