"""Hostile cases of the commands added with the detectors, importers and anchors: `faap data import
facet|coco-person-attributes`, `faap probe retrain`, `faap inspect features`, a torchvision detector
and a dataset numbering people otherwise than the detector."""

from __future__ import annotations

from tests.data.importers.releases import facet_row, write_csv
from tests.hostile.kit import Case, Ctx, Refused, cli, edit_json


def _facet(ctx: Ctx, rows: list[dict[str, str]] | None = None, *extra: object) -> list[str]:
    table = write_csv(
        ctx.tmp / "annotations.csv", rows if rows is not None else [facet_row(1, "img0.png", [1, 1, 20, 30])]
    )
    return cli("data", "import", "facet", "--annotations", table, "--images", ctx.src(), "--out", ctx.o / "f", *extra)


def _facet_existing(ctx: Ctx) -> list[str]:
    code = cli(
        "data",
        "import",
        "facet",
        "--annotations",
        write_csv(ctx.tmp / "a.csv", [facet_row(1, "img0.png", [1, 1, 20, 30])]),
        "--images",
        ctx.src(),
        "--out",
        ctx.o / "f",
    )
    from tests.hostile.kit import ok

    ok(*code)
    return _facet(ctx)


def _bad_box(ctx: Ctx) -> list[str]:
    row = facet_row(1, "img0.png", [1, 1, 20, 30])
    row["bounding_box"] = "not a box"
    return _facet(ctx, [facet_row(2, "img1.png", [1, 1, 20, 30]), row])


def _renumbered(ctx: Ctx) -> list[str]:
    def renumber(d: dict) -> None:
        for c in d["categories"]:
            c["id"] = 3
        for a in d["annotations"]:
            a["category_id"] = 3

    data = ctx.data()
    edit_json(ctx.ann("test"), renumber)
    return cli("eval", ctx.run(), "--data", data, "--bootstrap", "0", "--quiet", "--out", ctx.o / "m.json")


def _retrain(ctx: Ctx, *extra: object) -> list[str]:
    return cli("probe", "retrain", "--out", ctx.o / "r", "--limit-images", "8", *extra)


def _tv(ctx: Ctx, generator: str) -> list[str]:
    return cli(
        "train",
        "--out",
        ctx.o / "tv",
        "--set",
        "detector.name=fasterrcnn_mobilenet_v3_large_320_fpn",
        "--set",
        f"generator.name={generator}",
        "--epochs",
        "1",
        "--quiet",
    )


CASES = [
    Case(
        "import-facet-csv-missing",
        lambda c: cli(
            "data", "import", "facet", "--annotations", c.tmp / "no.csv", "--images", c.src(), "--out", c.o / "f"
        ),
        Refused(r"no\.csv"),
    ),
    Case(
        "import-facet-images-missing",
        lambda c: cli(
            "data",
            "import",
            "facet",
            "--annotations",
            write_csv(c.tmp / "a.csv", [facet_row(1, "img0.png", [1, 1, 20, 30])]),
            "--images",
            c.tmp / "noimg",
            "--out",
            c.o / "f",
        ),
        Refused(r"noimg"),
    ),
    Case(
        "import-facet-image-file-missing",
        lambda c: _facet(c, [facet_row(1, "gone.jpg", [1, 1, 20, 30])]),
        Refused(r"gone\.jpg"),
    ),
    Case("import-facet-bad-box-row", _bad_box, Refused(r"line 3")),
    Case("import-facet-existing-without-force", _facet_existing, Refused(r"--force")),
    Case(
        "import-facet-two-genders-set",
        lambda c: _facet(
            c,
            [
                {
                    **facet_row(1, "img0.png", [1, 1, 20, 30]),
                    "gender_presentation_masc": "1",
                    "gender_presentation_fem": "1",
                }
            ],
        ),
        Refused(r"line 2"),
    ),
    Case(
        "import-coco-instances-missing",
        lambda c: cli(
            "data",
            "import",
            "coco-person-attributes",
            "--instances",
            c.tmp / "no_inst.json",
            "--annotations",
            write_csv(c.tmp / "p.csv", [], ["id", "gender"]),
            "--images",
            c.src(),
            "--out",
            c.o / "p",
        ),
        Refused(r"no_inst\.json"),
    ),
    Case("probe-retrain-budget-bogus", lambda c: _retrain(c, "--budget", "huge"), Refused(r"huge|--budget")),
    Case("probe-retrain-seeds-backwards", lambda c: _retrain(c, "--seeds", "3-1"), Refused(r"3-1|seeds")),
    Case("probe-retrain-lr-negative", lambda c: _retrain(c, "--lr", "-1"), Refused(r"--lr|lr")),
    Case(
        "probe-retrain-out-is-run",
        lambda c: cli("probe", "retrain", "--out", c.run(), "--limit-images", "8"),
        Refused(r"run|--force|holds"),
    ),
    Case("inspect-features-not-a-run", lambda c: cli("inspect", "features", c.o), Refused(r"/o\b|run|checkpoint")),
    Case("inspect-features-epoch-absent", lambda c: cli("inspect", "features", c.run(), "--epoch", "9"), Refused(r"9")),
    Case(
        "inspect-features-out-run-json",
        lambda c: cli("inspect", "features", c.run(), "--out", c.run() / "run.json", "--force"),
        Refused(r"run\.json"),
    ),
    Case(
        "train-torchvision-without-weights",
        lambda c: _tv(c, "detector-aware"),
        Refused(r"ships no weights.*detector\.checkpoint"),
    ),
    Case("eval-person-category-renumbered", _renumbered, Refused(r"'person' category 3")),
]
