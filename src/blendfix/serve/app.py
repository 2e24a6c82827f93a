"""The Gradio page of ``blendfix serve``: two tabs wired to :mod:`blendfix.serve.pipeline`.

Import this module only after :func:`blendfix.serve.offline_environment` has run: Gradio reads its
temporary folder and analytics switch when it is imported.

Element ids the browser test (and anyone scripting the page) relies on: ``clean-original``,
``clean-edited``, ``clean-mask``, ``clean-button``, ``clean-message``, ``result-<method>``,
``clean-slider``, ``clean-zoom``, ``clean-scores``, ``clean-download``; ``edit-photo``,
``edit-source``, ``edit-button``, ``edit-message``, ``edit-I``, ``edit-T``, ``edit-M``, ``edit-F``,
``edit-cleaned-<method>``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import gradio as gr

from ..attributes import ATTRIBUTES
from .pipeline import (
    EXAMPLE,
    MASK_RULES,
    METHOD_LABELS,
    STRENGTH_RANGE,
    USER_ERRORS,
    Models,
    Workspace,
    clean_pair,
    try_edit,
    user_message,
)

log = logging.getLogger("blendfix.serve")

INTRO = """# blendfix — remove blending artifacts from an edited face photo
Upload the original photo and your edited or pasted version: blendfix removes the seam, colour step
and ghosting where the edit was blended in. Everything runs on this machine; nothing leaves it."""


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]<>#|])", r"\\\1", text)


def _message(kind: str, text: str, notes: list[str] | None = None) -> str:
    lines = [f"**{kind}** {_md_escape(text)}".strip()]
    lines += [f"- {_md_escape(n)}" for n in notes or []]
    return "\n".join(lines)


def _guard(fn: Callable[..., list[Any]], n_outputs: int, uploads: Callable[..., dict]) -> Callable[..., list[Any]]:
    """Run a page action; a bad upload (or a bug) becomes the first output's message, the rest cleared."""

    def wrapped(*args: Any) -> list[Any]:
        names = uploads(*args)
        try:
            return fn(*args)
        except USER_ERRORS as e:
            text = _message("Could not do that:", user_message(e, names))
        except Exception as e:  # a bug: one line in the page, the traceback in the server log
            log.exception("serve: internal error")
            text = _message("Internal error:", f"{type(e).__name__}: {user_message(e, names)} (the server log "
                            "has the details; please report it)")
        return [text] + [None] * (n_outputs - 1)

    return wrapped


def _clean_tab(models: Models, ws: Workspace) -> None:
    with gr.Row():
        original = gr.File(label="Original photo", type="filepath", elem_id="clean-original")
        edited = gr.File(label="Edited or pasted image (same size)", type="filepath", elem_id="clean-edited")
        mask = gr.File(label="Mask (optional: then the edited image is fused in over it)", type="filepath",
                       elem_id="clean-mask")
    with gr.Row():
        rule = gr.Dropdown(list(MASK_RULES), value="face", label="Face-mask rule of the Poisson teacher")
        button = gr.Button("Clean my pair", variant="primary", elem_id="clean-button")
    message = gr.Markdown(elem_id="clean-message")
    with gr.Row():
        results = [gr.Image(label=METHOD_LABELS[m], type="filepath", format="png", interactive=False,
                            height=360, elem_id=f"result-{m}") for m in models.methods]
    with gr.Row():
        slider = gr.ImageSlider(label="Before (pasted) / after (cleaned)", type="filepath", format="png",
                                interactive=False, max_height=360, elem_id="clean-slider")
        zoom = gr.Image(label="Zoom on the edit boundary", type="filepath", format="png", interactive=False,
                        height=360, elem_id="clean-zoom")
    scores = gr.Markdown(elem_id="clean-scores")
    download = gr.DownloadButton("Download the cleaned PNG", elem_id="clean-download")

    def run(o: str | None, e: str | None, m: str | None, r: str) -> list[Any]:
        res = clean_pair(models, ws.new(), o, e, m, r)
        names = {"original": o, "edited image": e, "mask": m}
        shown = [n for n in models.methods if n in res.cleaned]
        msg = _message("Done.", f"Cleaned by {', '.join(shown)}; the download is the {shown[0]} result.",
                       [user_message(n, names) for n in res.notes])
        main = res.cleaned[shown[0]]
        return [msg, *[res.cleaned.get(k) for k in models.methods], (str(res.before), str(main)), str(res.zoom),
                res.scores, str(res.download)]

    outputs = [message, *results, slider, zoom, scores, download]
    button.click(_guard(run, len(outputs), lambda o, e, m, r: {"original": o, "edited image": e, "mask": m}),
                 [original, edited, mask, rule], outputs, concurrency_id="models", concurrency_limit=1)


def _edit_tab(models: Models, ws: Workspace) -> None:
    with gr.Row():
        photo = gr.File(label="Your photo (with a face)", type="filepath", elem_id="edit-photo")
        with gr.Column():
            source = gr.Radio([EXAMPLE, "my upload"], value=EXAMPLE, label="Photo", elem_id="edit-source")
            attribute = gr.Dropdown(list(ATTRIBUTES), value="smile", label="Attribute")
            strength = gr.Slider(*STRENGTH_RANGE, value=1.0, step=0.1, label="Strength (1 ≈ StyleGAN2 α = 20)")
            with gr.Row():
                editor = gr.Radio(models.editors, value="synthetic", label="Editor", elem_id="edit-editor")
                seed = gr.Number(0, label="Seed", precision=0, minimum=0)
            button = gr.Button("Edit and clean", variant="primary", elem_id="edit-button")
    message = gr.Markdown(elem_id="edit-message")
    with gr.Row():
        labels = {"I": "I: original (face crop)", "T": "T: edited", "M": "M: edit mask",
                  "F": "F: fused (T·M + I·(1−M))"}
        images = {k: gr.Image(label=v, type="filepath", format="png", interactive=False, height=256,
                            elem_id=f"edit-{k}")
                  for k, v in labels.items()}
        cleaning = [m for m in models.methods if m != "fused"]
        cleaned = [gr.Image(label=f"cleaned: {METHOD_LABELS[m]}", type="filepath", format="png", interactive=False,
                            height=256, elem_id=f"edit-cleaned-{m}") for m in cleaning]

    def run(p: str | None, src: str, a: str, s: float, ed: str, sd: float | None) -> list[Any]:
        res = try_edit(models, ws.new(), p, src == EXAMPLE, a, s, ed, int(sd or 0))
        names = {"photo": p}
        msg = _message("Done.", f"{a} edit by the {ed} editor at strength {s:g}.",
                       [user_message(n, names) for n in res.notes])
        return [msg, *[str(res.images[k]) for k in images], *[res.cleaned.get(m) for m in cleaning]]

    outputs = [message, *images.values(), *cleaned]
    button.click(_guard(run, len(outputs), lambda p, *_: {"photo": p}),
                 [photo, source, attribute, strength, editor, seed], outputs, concurrency_id="models",
                 concurrency_limit=1)


def build_app(models: Models, ws: Workspace) -> gr.Blocks:
    """The page: an intro, then the "Clean my pair" and "Try an edit" tabs sharing ``models``."""
    with gr.Blocks(title="blendfix", analytics_enabled=False, delete_cache=(600, 3600)) as demo:
        gr.Markdown(INTRO)
        if models.notes:
            gr.Markdown("\n".join(f"- {n}" for n in models.notes))
        with gr.Tab("Clean my pair"):
            _clean_tab(models, ws)
        with gr.Tab("Try an edit"):
            _edit_tab(models, ws)
    return demo
