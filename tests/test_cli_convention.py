"""The CLI convention: -i/-o everywhere, help text on every option, old spellings hidden but accepted."""

from __future__ import annotations

import re

import click
import numpy as np
import pytest

from blendfix.cli import VERBS, cli, main
from blendfix.io import read_image, write_image

NETWORK_VERBS = ("edit", "clean", "train", "evaluate", "synth", "train-diffcam")


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_option_has_help_and_aliases_stay_out_of_it(verb):
    cmd = cli.get_command(click.Context(cli), verb)
    ctx = click.Context(cmd, info_name=verb)
    for p in cmd.params:
        if isinstance(p, click.Option) and p.name not in ("help",):
            assert p.help, f"blendfix {verb} {p.opts[0]} has no help text"
    text = cmd.get_help(ctx)
    for hidden in ("--data", "--out", "--run", "--originals", "--attributes", "--edited"):
        if verb not in ("clean",) or hidden != "--edited":  # clean's --edited is an input of its own
            shown = re.search(rf"{hidden}(?![\w-])", text)
            assert not shown, f"blendfix {verb} --help shows the old spelling {hidden}"
    names = {o for p in cmd.params for o in getattr(p, "opts", [])}
    if verb not in ("weights", "train-diffcam", "serve"):  # serve: a web page, no files in or out
        assert "-i" in names, verb
    if verb not in ("weights", "serve"):
        assert "-o" in names, verb
    if verb in NETWORK_VERBS:
        assert {"--device", "--precision", "--batch-size"} <= names, verb


def test_attribute_choices_and_default_are_listed():
    ctx = click.Context(cli)
    for verb, default in (("edit", "all"), ("mask", None), ("clean", None)):
        cmd = cli.get_command(ctx, verb)
        text = cmd.get_help(click.Context(cmd, info_name=verb))
        assert "-a, --attribute" in text and "eyebrows|beard|aging|smile" in text
        if default:
            assert f"default: {default}" in text


def test_o_with_an_image_suffix_is_a_file_for_one_input(tmp_path, capsys):
    img = np.linspace(0, 1, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    write_image(tmp_path / "a.png", img)
    assert main(["clean", "-i", str(tmp_path / "a.png"), "--fused", str(tmp_path / "a.png"), "--method", "fused",
                 "-o", str(tmp_path / "out.webp")]) == 0
    assert (tmp_path / "out.webp").is_file() and read_image(tmp_path / "out.webp").shape == (64, 64, 3)
    write_image(tmp_path / "in" / "b.png", img)
    write_image(tmp_path / "in" / "c.png", img)
    code = main(["clean", "-i", str(tmp_path / "in"), "--fused", str(tmp_path / "in"), "--method", "fused",
                 "-o", str(tmp_path / "two.png")])
    assert code == 1 and "names one image file but the input holds 2 items" in capsys.readouterr().err
    assert main(["clean", "-i", str(tmp_path / "in"), "--fused", str(tmp_path / "in"), "--method", "fused",
                 "-o", str(tmp_path / "folder"), "--ext", "jpg", "--suffix", "_x"]) == 0
    made = sorted(p.name for p in (tmp_path / "folder").iterdir() if not p.name.startswith("."))  # .lock
    assert made == ["b_x.jpg", "c_x.jpg", "runtime.json"]
