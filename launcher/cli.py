"""`launch`: the command line. Parses arguments, calls launcher.api, prints.

Heavy modules (ray, torch) load only inside the commands that need them, so `--help` and
`validate` stay fast.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import typer

from launcher.errors import JobFailed, LaunchError
from launcher.settings import default_address

app = typer.Typer(
    help="One YAML file to a fine-tuning run on a Ray cluster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
local_app = typer.Typer(help="The embedded local Ray head.", no_args_is_help=True)
app.add_typer(local_app, name="local")

JobFile = typer.Argument(..., help="The job's YAML file.", show_default=False)
RunId = typer.Argument(None, help="Run id (default: the latest run submitted from here).")
Address = typer.Option(default_address(), "--address", envvar="LAUNCH_RAY_ADDRESS",
                       help="Ray dashboard address.")


def main() -> None:
    """Console entry point: user errors print as one line each, never as a traceback."""
    try:
        app()
    except LaunchError as err:
        for line in err.lines():
            print(line if err.exit_code == 2 else f"error: {line}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as err:  # a bug in launch, not in the user's input
        if os.environ.get("LAUNCH_DEBUG"):
            raise
        print(f"internal error: {type(err).__name__}: {err} (LAUNCH_DEBUG=1 shows the "
              "traceback)", file=sys.stderr)
        sys.exit(1)


@app.command()
def validate(job_file: Path = JobFile) -> None:
    """Check a job file; print OK or one line per problem (FILE:LINE:COL: field: message)."""
    from launcher.spec.load import load_spec

    load_spec(job_file)
    typer.echo(f"{job_file}: OK")


@app.command()
def schema(
    markdown: bool = typer.Option(False, "--markdown", help="A Markdown reference table instead."),
) -> None:
    """Print the job file's JSON Schema (for editor completion and checks)."""
    if markdown:
        from launcher.spec.reference import markdown_reference

        typer.echo(markdown_reference(), nl=False)
        return
    import json

    from launcher.spec.models import JobSpec

    typer.echo(json.dumps(JobSpec.model_json_schema(), indent=2))


@app.command()
def submit(
    job_file: Path = JobFile,
    follow: bool = typer.Option(False, "--follow", "-f",
                                help="Stream the logs to the end; exit 3 unless SUCCEEDED."),
    resume: str = typer.Option(None, "--resume", metavar="RUN",
                               help="Continue this FAILED or STOPPED run from its last "
                               "checkpoint, in its own results folder."),
    target: str = typer.Option(None, "--target", help="local or kubernetes (overrides "
                               "target.kind)."),
    context: str = typer.Option(None, "--context", help="kubeconfig context (overrides "
                                "target.kubernetes.context)."),
    namespace: str = typer.Option(None, "--namespace", help="Kubernetes namespace "
                                  "(overrides target.kubernetes.namespace)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be created (the "
                                 "RayJob YAML for kubernetes, else the resolved spec); create, "
                                 "build and push nothing."),
) -> None:
    """Validate a job and run it on its target; print the run id and where to watch it."""
    from launcher import api
    from launcher.image.console import terminal_feedback

    overrides = _target_overrides(target, context, namespace)
    if dry_run:
        typer.echo(api.dry_run(job_file, overrides), nl=False)
        return
    run = api.submit(job_file, resume=resume, feedback=terminal_feedback(),
                     overrides=overrides)
    target = api.target_of(run)
    typer.echo(f"submitted {run.run_id}" + (f" (attempt {run.attempt})" if resume else ""))
    typer.echo(f"  dashboard: {target.dashboard_url(run.ray_job_id)}")
    typer.echo(f"  results:   {run.run_dir}")
    if follow:
        _follow(run)
    else:
        typer.echo(f"  follow:    launch logs {run.run_id} -f")


@app.command()
def build(
    job_file: Path = JobFile,
    builder: str = typer.Option(None, "--builder", help="auto, docker or oci (default: the "
                                "spec's image.builder)."),
) -> None:
    """Build and push the job's image (nothing when it is already in the registry); print its
    reference."""
    from launcher import api
    from launcher.image.console import terminal_feedback

    if builder not in (None, "auto", "docker", "oci"):
        raise LaunchError(f"--builder {builder}: use auto, docker or oci")
    image = api.build(job_file, builder, terminal_feedback())
    typer.echo(f"{image.builder} build in {image.seconds:.1f} s, {image.bytes_pushed} bytes "
               f"uploaded by launch (code layer {image.code_layer_bytes} bytes)", err=True)
    typer.echo(image.reference)


@app.command("run-image")
def run_image(
    job_file: Path = JobFile,
    results: Path = typer.Option(Path("smoke-runs"), "--results",
                                 help="Folder the smoke run's results go to."),
) -> None:
    """Build the job's image and run it here with podman/docker on tiny settings (1 worker,
    2 steps), so a missing dependency shows up before any cluster time is spent."""
    from launcher import api
    from launcher.image.console import terminal_feedback

    image, layout = api.run_image(job_file, results, terminal_feedback())
    typer.echo(f"{image.reference}: smoke run SUCCEEDED; results in {layout.root}")


def _target_overrides(kind: str | None, context: str | None, namespace: str | None) -> dict:
    """Spec overrides from the target flags (validated with the file, like its own values)."""
    kubernetes = {k: v for k, v in (("context", context), ("namespace", namespace)) if v}
    target = {**({"kind": kind} if kind else {}),
              **({"kubernetes": kubernetes} if kubernetes else {})}
    return {"target": target} if target else {}


@app.command()
def status(run_id: str = RunId) -> None:
    """The state of a run."""
    from launcher import api

    run = api.record(run_id)
    info = api.status(run)
    typer.echo(f"{run.run_id}: {info.state}")
    if info.message and info.state != "SUCCEEDED":
        typer.echo(f"  {info.message.splitlines()[0]}")


@app.command()
def logs(
    run_id: str = RunId,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming until it ends."),
) -> None:
    """A run's driver log (training progress, errors)."""
    from launcher import api

    run = api.record(run_id)
    if follow:
        _follow(run)
    else:
        for chunk in api.logs(run, follow=False):
            typer.echo(chunk, nl=False)


@app.command("list")
def list_runs(
    address: str = Address,
    namespace: str = typer.Option(None, "--namespace", help="List the RayJobs launch created "
                                  "in this Kubernetes namespace instead."),
    context: str = typer.Option(None, "--context", help="kubeconfig context for --namespace."),
    storage: str = typer.Option(None, "--storage", help="List the runs kept under this storage "
                                "URI instead (works without any Ray head)."),
    endpoint_url: str = typer.Option(None, "--endpoint-url", envvar="AWS_ENDPOINT_URL",
                                     help="S3 endpoint for --storage."),
) -> None:
    """The runs launch submitted to the Ray head at --address, or kept in --storage."""
    from launcher import api

    if storage:
        rows = [(run.run_id, run.state, "" if run.eval_loss is None else f"{run.eval_loss:.4g}",
                 run.uri) for run in api.stored_runs(storage, endpoint_url)]
        _print_table(("RUN ID", "STATE", "EVAL LOSS", "RESULTS"), rows)
        return
    rows = [(job.run_id, job.state,
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.start_time or 0)),
             job.run_dir or "") for job in api.list_runs(address, namespace, context)]
    _print_table(("RUN ID", "STATE", "STARTED", "RESULTS"), rows)


@app.command()
def stop(run_id: str = typer.Argument(..., help="Run id.", show_default=False)) -> None:
    """Stop a running job."""
    from launcher import api

    run = api.record(run_id)
    info = api.stop(run)
    typer.echo(f"{run.run_id}: {info.state}")


@app.command()
def results(
    run_id: str = RunId,
    download: Path = typer.Option(None, "--download", help="Also copy the model and every "
                                  "artifact but the checkpoints into this folder."),
) -> None:
    """A run's final metrics and where every artifact is (read from storage alone)."""
    from launcher import api

    run = api.record(run_id)
    outcome = api.results(run)
    typer.echo(f"{outcome.run_id}: {outcome.state}")
    typer.echo(f"results in {outcome.run_dir}\n")
    metrics = [(key, f"{value:.4g}" if isinstance(value, float) else str(value))
               for key, value in outcome.summary.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)]
    if metrics:
        _print_table(("METRIC", "VALUE"), metrics)
        typer.echo("")
    _print_table(("ARTIFACT", "PATH (in the results folder)"), list(outcome.artifacts.items()))
    if download:
        count = api.download(run, download)
        typer.echo(f"\ndownloaded {count} files to {download}")


@app.command()
def dashboard(run_id: str = RunId) -> None:
    """The Ray dashboard of a run; for kubernetes runs, a port-forward held until Ctrl-C."""
    from launcher import api

    run = api.record(run_id)
    with api.target_of(run).dashboard(run.ray_job_id) as url:
        typer.echo(url)
        if run.target == "kubernetes":
            typer.echo("forwarding to the head pod; Ctrl-C to stop", err=True)
            while True:
                time.sleep(3600)


@local_app.command("up")
def local_up(address: str = Address) -> None:
    """Start a local Ray head (token auth on, listening on 127.0.0.1 only)."""
    from launcher import local_head, ray_auth

    if local_head.probe(address, ray_auth.headers_for(address)) is not None:
        typer.echo(f"a Ray head already answers at {address}")
        return
    state = local_head.start(address)
    typer.echo(f"Ray head started at {state.address} (process group {state.pgid}); "
               f"token in {state.token_path}")


@local_app.command("down")
def local_down() -> None:
    """Stop the local Ray head that launch started (by its process group, never `ray stop`)."""
    from launcher import local_head

    if local_head.stop():
        typer.echo("local Ray head stopped")
    else:
        typer.echo("no Ray head started by launch is running")


def _follow(run) -> None:
    from launcher import api

    for chunk in api.logs(run, follow=True):
        typer.echo(chunk, nl=False)
    info = api.wait(run, timeout_s=30)
    typer.echo(f"{run.run_id}: {info.state}")
    if info.state != "SUCCEEDED":
        raise JobFailed(f"run {run.run_id} ended {info.state}: "
                        f"{(info.message or 'see launch logs').splitlines()[0]}")
    typer.echo(f"results: launch results {run.run_id}")


def _print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Plain aligned columns: ids and paths are for copying, so nothing wraps or is cut."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for row in (headers, *rows):
        typer.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
