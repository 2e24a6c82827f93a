"""``blendfix serve``: a local web page (Gradio) for cleaning your own pair and trying an edit.

Offline by construction: Gradio's analytics and version check are off, Hugging Face Hub is put in
offline mode, no share link is made unless asked, and the page uses only files Gradio serves itself
(no CDN, local fonts). Everything the server writes — uploads, results, Gradio's cache — goes into
one temporary folder that is removed when the server stops (Ctrl-C or SIGTERM).

Models load once at start-up; requests that run them queue one at a time.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

#: environment Gradio and huggingface_hub read when imported: no telemetry, no network look-ups
OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


def offline_environment(temp_dir: Path) -> dict[str, str | None]:
    """Set the offline switches and point Gradio's temporary folder into ``temp_dir`` (before importing it).

    Returns the previous values, for :func:`restore_environment`.
    """
    new = {**OFFLINE_ENV, "GRADIO_TEMP_DIR": str(temp_dir / "gradio")}
    old = {k: os.environ.get(k) for k in new}
    os.environ.update(new)
    return old


def restore_environment(old: dict[str, str | None]) -> None:
    """Put back the variables :func:`offline_environment` changed."""
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve(host: str = "127.0.0.1", port: int = 7860, device: str = "auto", weights: str | None = None,
          share: bool = False, edit_size: int = 512) -> None:
    """Start the page on ``host:port`` and block until Ctrl-C or SIGTERM; then remove the temporary folder.

    ``device``/``weights`` go to the cleaners (see :class:`blendfix.serve.pipeline.Models`);
    ``share=True`` asks Gradio for a public link (off by default: the page stays on this machine).
    """
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    if importlib.util.find_spec("gradio") is None:
        raise ValueError("blendfix serve needs Gradio: pip install 'blendfix[serve]' (make demo installs it)")
    tmp = Path(tempfile.mkdtemp(prefix="blendfix-serve-"))
    demo = None
    old_handler = signal.signal(signal.SIGTERM, _stop)
    old_env = offline_environment(tmp)  # before Gradio is imported: it reads these at import time
    try:
        import gradio as gr

        from .app import build_app
        from .pipeline import Models, Workspace

        models = Models(device=device, weights=weights, edit_size=edit_size)
        demo = build_app(models, Workspace(tmp / "results"))
        demo.queue(default_concurrency_limit=1, max_size=32)
        print(f"blendfix serve: temporary files in {tmp} (removed on exit); methods: {', '.join(models.methods)}",
              flush=True)
        try:
            demo.launch(server_name=host, server_port=port, share=share, prevent_thread_lock=True, ssr_mode=False,
                        show_error=False, quiet=True, max_file_size="200mb", theme=gr.themes.Default(), pwa=False,
                        mcp_server=False)
        except OSError as e:
            raise ValueError(f"cannot listen on {host}:{port} ({e.strerror or 'the port is in use'}); another "
                             "program may hold the port: choose another with --port") from e
        print(f"blendfix serve: open {demo.local_url}" + (f" or {demo.share_url}" if demo.share_url else "")
              + " (Ctrl-C stops)", flush=True)
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("blendfix serve: stopped", flush=True)
    finally:
        signal.signal(signal.SIGTERM, old_handler)
        if demo is not None:
            demo.close()
        shutil.rmtree(tmp, ignore_errors=True)
        restore_environment(old_env)


__all__ = ["OFFLINE_ENV", "offline_environment", "restore_environment", "serve"]
