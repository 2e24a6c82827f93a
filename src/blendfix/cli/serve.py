"""`blendfix serve [--host 127.0.0.1] [--port 7860]`: the local web page (needs the `serve` extra)."""

from __future__ import annotations

import click


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 makes the page reachable from other machines.")
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--weights", default=None, help="Trained cleaner (run folder, exported file or registered name).")
@click.option("--share", is_flag=True, help="Ask Gradio for a public share link (off: the page stays local).")
def cmd(host: str, port: int, device: str, weights: str | None, share: bool) -> int:
    """Web page: clean your own (original, edited) pair, or try an edit on a photo; Ctrl-C stops it."""
    from ..serve import serve

    serve(host=host, port=port, device=device, weights=weights, share=share)
    return 0
