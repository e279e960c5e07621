"""Dataset cards: the built-in cards, and a generated card that checks a copy file by file and
puts its published numbers beside ours."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from restorebench.core.build import build_source
from restorebench.core.errors import UserError
from restorebench.data.cards import builtin_cards, load_card
from restorebench.report.files import write_report
from restorebench.report.leaderboard import to_markdown
from restorebench.results.board import build_leaderboard
from restorebench.run.pipeline import RunOptions, run_suite
from tests import REPO
from tests.runs import cli

PIXELS_CSV = REPO.parent / "shared" / "data" / "cards" / "pixel_sha256.csv"
PUBLISHED = 30.0


def _images(seed=0):
    rng = np.random.default_rng(seed)
    smooth = lambda h, w, c: np.kron(rng.integers(0, 256, (h // 4, w // 4, c)), np.ones((4, 4, 1)))  # noqa: E731
    return {
        "alpha_GT.bmp": smooth(32, 40, 3).astype(np.uint8),
        "beta.png": smooth(36, 28, 3).astype(np.uint8),
        "gamma.png": smooth(24, 24, 1)[:, :, 0].astype(np.uint8),  # gray: HxW
    }


@pytest.fixture
def fake_set(tmp_path):
    """A copy of a made-up test set, and its card (hashes computed here, by hand)."""
    root = tmp_path / "copy" / "nested"
    root.mkdir(parents=True)
    files = []
    for name, pixels in _images().items():
        Image.fromarray(pixels).save(root / name)
        h, w = pixels.shape[:2]
        channels = 1 if pixels.ndim == 2 else 3
        files.append(
            {
                "file": name,
                "height": h,
                "width": w,
                "channels": channels,
                "pixel_sha256": hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
            }
        )
    card = {
        "name": "fake3",
        "title": "Fake3",
        "description": "three generated images",
        "tasks": ["superres"],
        "licence": "CC0",
        "citation": "the tests",
        "get": "made by tests/data/test_cards.py",
        "files": files,
        "published": [
            {
                "task": "superres",
                "method": "superres/bicubic",
                "degradation": "bicubic?scale=2",
                "metric": "psnr_y",
                "value": PUBLISHED,
                "source": "A. Tester, Journal of Tests 2026",
            },
            {
                "task": "superres",
                "method": "superres/bicubic",
                "degradation": "bicubic?scale=4",  # not run: never matched
                "metric": "psnr_y",
                "value": 1.0,
                "source": "elsewhere",
            },
        ],
    }
    path = tmp_path / "fake3.yaml"
    path.write_text(yaml.safe_dump(card))
    return path, tmp_path / "copy"


def _run(tmp_path, dataset, out="run"):
    return run_suite(
        RunOptions(
            tasks=("superres",),
            datasets=(dataset,),
            degradations=("bicubic?scale=2",),
            methods=("superres/bicubic", "superres/nearest"),
            out=tmp_path / out,
            executor="local",
            tracking=False,
            use_cache=False,
        )
    )


def test_a_verified_copy_is_scored_with_the_published_number_beside_ours(fake_set, tmp_path):
    card, root = fake_set
    summary = _run(tmp_path, f"card:{card}?root={root}")
    assert summary.failed == 0
    results = summary.results
    assert sorted(results["image"].unique()) == ["alpha_GT", "beta", "gamma"]
    assert set(results["dataset_check"]) == {"verified (pixels of 3 files)"}
    board = build_leaderboard(results).table.set_index("method")
    ours = results[(results["method"] == "superres/bicubic") & (results["metric"] == "psnr_y")]["value"].mean()
    row = board.loc["superres/bicubic"]
    assert row["published_metric"] == "psnr_y" and row["published"] == PUBLISHED
    assert row["delta_published"] == pytest.approx(ours - PUBLISHED)
    assert row["published_source"] == "A. Tester, Journal of Tests 2026"
    assert np.isnan(board.loc["superres/nearest", "published"])  # nothing published for it
    markdown = to_markdown(build_leaderboard(results))
    assert "dataset card: verified (pixels of 3 files)." in markdown
    assert "| gap (dB) | published_metric | published | delta_published |" in markdown
    assert "- A. Tester, Journal of Tests 2026" in markdown
    written = write_report(results, tmp_path / "report", ["csv", "html"], run_dir=tmp_path / "run")
    csv_text = next(p for p in written if p.suffix == ".csv").read_text()
    assert "delta_published" in csv_text.splitlines()[0] and "A. Tester" in csv_text
    html = next(p for p in written if p.suffix == ".html").read_text()
    assert "<th>delta_published</th>" in html and "Published: A. Tester, Journal of Tests 2026" in html


def test_a_copy_that_differs_is_reported_file_by_file(fake_set, tmp_path):
    card, root = fake_set
    nested = root / "nested"
    pixels = _images()
    Image.fromarray(pixels["beta.png"]).save(nested / "beta.png", quality=75, format="JPEG")  # a re-encode
    Image.fromarray(np.stack([pixels["gamma.png"]] * 3, axis=2)).save(nested / "gamma.png")  # gray -> colour
    (nested / "alpha_GT.bmp").unlink()
    with pytest.raises(UserError) as info:
        build_source(f"card:{card}?root={root}").list_images()
    message = str(info.value)
    assert "differs from its card (3 of 3 files)" in message
    assert "alpha_GT.bmp: missing" in message
    assert "beta.png: the pixels of beta.png differ from the card's" in message
    assert "gamma.png: gamma.png is colour, the card says gray" in message
    assert "allow_mismatch=true" in info.value.hint


def test_allow_mismatch_scores_the_copy_marked_and_without_published_numbers(fake_set, tmp_path):
    card, root = fake_set
    pixels = _images()["beta.png"].copy()
    pixels[0, 0] ^= 1  # one pixel off
    Image.fromarray(pixels).save(root / "nested" / "beta.png")
    summary = _run(tmp_path, f"card:{card}?root={root}&allow_mismatch=true")
    assert summary.failed == 0 and summary.results["image"].nunique() == 3
    assert set(summary.results["dataset_check"]) == {
        "differs from card: 1 of 3 files; scored though different: beta.png (pixels differ)"
    }
    board = build_leaderboard(summary.results)
    assert board.table["published"].isna().all()
    assert "**Not comparable with published numbers:** dataset card: differs from card" in to_markdown(board)


def test_a_copy_scored_anyway_names_the_files_skipped_and_those_that_differ(fake_set, tmp_path, caplog):
    card, root = fake_set
    nested = root / "nested"
    pixels = _images()["beta.png"].copy()
    pixels[0, 0] ^= 1  # altered
    Image.fromarray(pixels).save(nested / "beta.png")
    (root / "other").mkdir()
    (root / "other" / "alpha_GT.bmp").write_bytes((nested / "alpha_GT.bmp").read_bytes())  # duplicated
    with caplog.at_level("WARNING", logger="restorebench.data.cards"):
        summary = _run(tmp_path, f"card:{card}?root={root}&allow_mismatch=true")
    assert sorted(summary.results["image"].unique()) == ["beta", "gamma"]  # 2 of 3 scored
    verdict = (
        "differs from card: 2 of 3 files; not scored: alpha_GT.bmp (2 candidates); "
        "scored though different: beta.png (pixels differ)"
    )
    assert set(summary.results["dataset_check"]) == {verdict}
    assert f"dataset card: {verdict}." in to_markdown(build_leaderboard(summary.results))  # above the table
    assert f"fake3: {verdict}; scored anyway" in caplog.text  # the run's warning


def test_files_are_found_by_another_name_and_ambiguity_is_refused(fake_set, tmp_path):
    card, root = fake_set
    nested = root / "nested"
    (nested / "alpha_GT.bmp").rename(nested / "alpha_GT.png")  # another lossless format: same pixels
    assert len(build_source(f"card:{card}?root={root}").list_images()) == 3
    other = root / "other"
    other.mkdir()
    (other / "beta.png").write_bytes((nested / "beta.png").read_bytes())
    with pytest.raises(UserError, match=r"beta.png: 2 candidates .*point root at the folder of one copy"):
        build_source(f"card:{card}?root={root}").list_images()


def test_pixels_pick_among_files_of_one_name(fake_set):
    card, root = fake_set
    pixels = _images()["beta.png"].copy()
    pixels[3, 3] ^= 8
    (root / "other").mkdir()
    Image.fromarray(pixels).save(root / "other" / "beta.png")  # same name, other pixels: not the card's
    source = build_source(f"card:{card}?root={root}")
    located = {r.key: r.locator for r in source.list_images()}
    assert located["beta"] == str(root / "nested" / "beta.png")
    assert source.check == "verified (pixels of 3 files)"


def _mcmaster(folder, names, size=500):
    """A McMaster-like copy: generated 500x500 colour images (never the real set) under ``names``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(18)
    for name in names:
        pixels = np.kron(rng.integers(0, 256, (size // 20, size // 20, 3)), np.ones((20, 20, 1))).astype(np.uint8)
        Image.fromarray(pixels).save(folder / name)


IRCNN_NAMES = [f"{i:02d}.tif" for i in range(1, 19)]


def test_a_zero_padded_public_copy_is_recognised_and_named(tmp_path):
    _mcmaster(tmp_path / "testsets" / "Set18", IRCNN_NAMES)
    source = build_source(f"card:mcmaster?root={tmp_path / 'testsets'}")
    images = source.list_images()
    assert [r.key for r in images] == [str(i) for i in range(1, 19)]  # the card's names, whatever the copy's
    assert images[0].locator == str(tmp_path / "testsets" / "Set18" / "01.tif")
    assert source.check == "verified (sizes of 18 files; matched as IRCNN Set18 names)"
    plain = tmp_path / "plain"
    _mcmaster(plain, [f"{i}.png" for i in range(1, 19)])  # the card's names, as PNG
    other = build_source(f"card:mcmaster?root={plain}")
    assert len(other.list_images()) == 18 and other.check == "verified (sizes of 18 files)"
    (plain / "2.png").rename(plain / "02.png")
    mixed = build_source(f"card:mcmaster?root={plain}")
    assert len(mixed.list_images()) == 18
    assert mixed.check == "verified (sizes of 18 files; matched as the card's names and IRCNN Set18 names)"


def test_sizes_decide_between_names_and_an_ambiguous_copy_is_refused(tmp_path):
    root = tmp_path / "Set18"
    _mcmaster(root, IRCNN_NAMES)
    _mcmaster(root / "thumbs", ["1.tif"], size=100)  # a 1.tif, but not McMaster's size
    source = build_source(f"card:mcmaster?root={root}")
    assert source.list_images()[0].locator == str(root / "01.tif")
    assert source.check.startswith("verified (sizes of 18 files")
    _mcmaster(root / "other", ["1.tif"])  # a second 500x500 1.tif: sizes cannot tell them apart
    with pytest.raises(UserError) as info:
        build_source(f"card:mcmaster?root={root}").list_images()
    message = str(info.value)
    assert "differs from its card (1 of 18 files)" in message
    assert "1.tif: 3 candidates (01.tif, other/1.tif, thumbs/1.tif), 2 of them with the card's size; " in message
    assert "point root at the folder of one copy" in message


def test_a_jpeg_is_not_the_same_pixels(tmp_path):
    _mcmaster(tmp_path, [*IRCNN_NAMES[1:], "01.jpg"])
    with pytest.raises(UserError, match=r"1.tif: 01.jpg is a JPEG: a lossy copy of the card's .tif file"):
        build_source(f"card:mcmaster?root={tmp_path}").list_images()


def test_card_errors_say_what_to_do(tmp_path):
    with pytest.raises(UserError, match="no dataset card named 'set6'") as info:
        build_source(f"card:set6?root={tmp_path}")
    assert "set5" in info.value.hint
    with pytest.raises(UserError, match="does not exist") as info:
        build_source(f"card:set5?root={tmp_path / 'nowhere'}").list_images()
    assert "IRCNN" in info.value.hint
    with pytest.raises(UserError, match="cannot read SIDD validation .* through its card yet"):
        build_source(f"card:sidd-val?root={tmp_path}").list_images()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: Bad Name\ntitle: x\n")
    with pytest.raises(UserError, match=r"dataset card .*bad.yaml is not valid: name: String should match"):
        build_source(f"card:{bad}?root={tmp_path}")
    card = yaml.safe_load((builtin_cards()["mcmaster"]).read_text())
    card["copies"][0]["names"]["19.tif"] = "019.tif"
    bad.write_text(yaml.safe_dump(card))
    with pytest.raises(UserError, match=r"copy 'IRCNN Set18' renames files the card does not list: 19.tif"):
        build_source(f"card:{bad}?root={tmp_path}")


def test_the_builtin_cards():
    cards = builtin_cards()
    assert set(cards) == {
        "set5",
        "set14",
        "bsd68",
        "cbsd68",
        "kodak24",
        "mcmaster",
        "urban100",
        "div2k-val",
        "sidd-val",
        "sid-sony-test",
    }
    for name in cards:
        card = load_card(name)
        assert card.name == name and card.citation and card.licence and card.get
        for entry in card.published:
            from restorebench.core.build import build_degradation, build_method

            build_degradation(entry.degradation, task=entry.task)
            build_method(entry.method, task=entry.task)
    counts = {"set5": 5, "set14": 14, "bsd68": 68, "cbsd68": 68}
    for name, n in counts.items():
        card = load_card(name)
        assert len(card.files) == n and card.checks == "pixels"
    published = {(p.method, p.degradation): p.value for p in load_card("set5").published}
    assert published[("superres/bicubic", "bicubic?scale=2")] == 33.66
    assert published[("superres/srcnn?variant=9-1-5", "bicubic?scale=4")] == 30.09
    published = {(p.method, p.degradation): p.value for p in load_card("bsd68").published}
    assert published[("denoise/dncnn?model=specific", "gaussian?sigma=25")] == 29.23
    assert published[("denoise/bm3d", "gaussian?sigma=50")] == 25.62


@pytest.mark.skipif(not PIXELS_CSV.exists(), reason="the shared pixel-hash table is not on this machine")
def test_the_hashed_cards_carry_the_shared_pixel_table():
    with PIXELS_CSV.open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    for name in ("Set5", "Set14", "BSD68", "CBSD68"):
        card = {f.file: f for f in load_card(name.lower()).files}
        mine = [r for r in rows if r["dataset"] == name]
        assert len(mine) == len(card)
        for r in mine:
            entry = card[r["file"]]
            assert (entry.height, entry.width, entry.channels) == (
                int(r["height"]),
                int(r["width"]),
                int(r["channels"]),
            )
            assert entry.pixel_sha256 == r["pixel_sha256"]


def test_list_datasets_shows_the_cards():
    result = cli("list", "datasets", "--json")
    assert result.returncode == 0, result.stderr
    records = {r["scheme"]: r for r in json.loads(result.stdout)}
    assert "card:" in records
    assert records["card:set5"]["description"].startswith("Set5: ")
    assert "checks pixels of 5 files" in records["card:set5"]["description"]
    assert "6 published results" in records["card:set5"]["description"]
