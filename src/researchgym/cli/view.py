"""`researchgym view`: browse a run in a web browser, or export a static copy."""

from __future__ import annotations

from pathlib import Path

import typer

from researchgym.cli.common import _fail, console


def view(
    run_dir: Path = typer.Argument(
        ..., help="a run folder (results.sqlite and trajectories) or a folder of trajectories"
    ),
    port: int = typer.Option(8765, min=0, max=65535, help="port to serve on (0: any free port)"),
    host: str = typer.Option("127.0.0.1", help="address to bind; anything but loopback exposes your trajectories"),
    export: Path | None = typer.Option(None, help="write a self-contained static copy into this folder instead"),
) -> None:
    """Browse a run in a web browser: scores, AUP, episodes, and every step of a trajectory."""
    from researchgym.viewer import ViewerServer, export_bundle

    if not run_dir.is_dir():
        _fail(f"{run_dir} is not a folder (give a run folder, as `researchgym run` prints it)")
    if export is not None:
        if export.exists() and not export.is_dir():
            _fail(f"--export {export} is a file; give a folder (it is created if missing)")
        index = export_bundle(run_dir, export)
        console.print(f"viewer bundle: {index} (open it in a browser; no server needed)", highlight=False)
        return
    try:
        server = ViewerServer(run_dir, host=host, port=port)
    except OSError as exc:
        _fail(f"cannot serve on {host}:{port}: {exc.strerror or exc} (try --port 0)")
        return
    console.print(f"researchgym viewer for {run_dir}: {server.url}  (Ctrl-C stops it)", highlight=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
