"""`launch`: the command line. Parses arguments, calls launcher.api, prints.

Heavy modules (ray, torch) load only inside the commands that need them, so `--help` and
`validate` stay fast.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import typer

from launcher.errors import JobFailed, LaunchError
from launcher.output import Format, error_json, table, to_json, wants_json
from launcher.starter import TASKS

# Plain help (click's): typer's boxed help showed every on/off flag as `<bool>`, which reads as
# if `--follow true` were how to pass one, and wrapped text into boxes at 80 columns.
HELP = {"rich_markup_mode": None, "no_args_is_help": True}
app = typer.Typer(
    help="One YAML file to a fine-tuning run on a Ray cluster.",
    add_completion=False,
    pretty_exceptions_enable=False,
    **HELP,
)
local_app = typer.Typer(help="The embedded local Ray head.", **HELP)
app.add_typer(local_app, name="local")
kind_app = typer.Typer(help="A local Kind cluster with KubeRay, an S3 store and an image "
                       "registry (needs docker, kind, kubectl, helm).", **HELP)
app.add_typer(kind_app, name="kind")
app.add_typer(kind_app, name="cluster", hidden=True)  # its name before `kind`
DryRun = typer.Option(False, "--dry-run", help="Print the commands it would run; run none.")

JobFile = typer.Argument(..., help="The job's YAML file.", show_default=False,
                         metavar="JOB_FILE")
RunId = typer.Argument(None, help="Run id (default: the latest run submitted from here).",
                       metavar="RUN_ID")
Address = typer.Option(None, "--address", show_default=False, metavar="URL",
                       help="Ray dashboard (Jobs API) address, e.g. http://10.0.0.5:8265 "
                       "(default: the job's target.address, RAY_API_SERVER_ADDRESS, RAY_ADDRESS, "
                       "LAUNCH_RAY_ADDRESS, then http://127.0.0.1:8265).")
Output = typer.Option(Format.text, "--output", "-o",
                      help="text, or json: one JSON document on stdout for scripts.")
Sets = typer.Option(None, "--set", metavar="KEY=VALUE", show_default=False,
                    help="Override one field of the job file, checked like the file, e.g. "
                    "--set training.learning_rate=1e-4 (repeat for more).")
Verbose = typer.Option(False, "--verbose", "-v",
                       help="Following on a terminal: show Ray's and the libraries' log lines "
                       "too, not only launch's (all are in the run's logs/driver.log).")


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"launch {version('launch')}")
        raise typer.Exit()


@app.callback()
def _options(version: bool = typer.Option(False, "--version", is_eager=True,
                                          callback=_print_version,
                                          help="Print launch's version and exit.")) -> None:
    """One YAML file to a fine-tuning run on a Ray cluster."""


def main() -> None:
    """Console entry point: user errors print as one line each, never as a traceback."""
    try:
        app()
    except LaunchError as err:
        if wants_json(sys.argv[1:]):
            print(error_json(err))
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
def validate(job_file: Path = JobFile, sets: list[str] = Sets, output: Format = Output) -> None:
    """Check a job file; print OK or one line per problem (FILE:LINE:COL: field: message)."""
    from launcher.spec.load import load_spec, overrides_from_sets

    spec = load_spec(job_file, overrides_from_sets(sets or []))
    _emit(output, {"file": job_file, "valid": True, "name": spec.name,
                   "target": spec.target.kind}, [f"{job_file}: OK"])


@app.command()
def doctor(
    job_file: Path = typer.Argument(None, help="A job file: also check what it needs (storage, "
                                    "registry, kube context, GPUs).", show_default=False),
    address: str = Address,
    output: Format = Output,
) -> None:
    """Check this machine and the job's servers: each check ✓ or ✗ with a fix; exit 1 when
    something the job needs is ✗."""
    from launcher.doctor import diagnose

    report = diagnose(job_file, address)
    _emit(output, {"ok": report.ok, "checks": report.checks}, report.lines())
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def init(
    path: Path = typer.Argument(Path("job.yaml"), help="The job file to write (a folder gets "
                                "job.yaml)."),
    task: str = typer.Option("causal_lm", "--task", help="What the job trains: "
                             f"{', '.join(f'{name} ({t.summary})' for name, t in TASKS.items())}."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing job file."),
    output: Format = Output,
) -> None:
    """Write a commented starter job file (and sample data) that passes `launch validate`."""
    from launcher.starter import DATA_FILE, write_starter

    made = write_starter(path, task, force)
    lines = [f"wrote {made.job_file} ({made.task})"]
    if made.data_file:
        lines.append(f"wrote {made.data_file} (sample rows: replace them with your data)")
    else:
        lines.append(f"kept {made.job_file.parent / DATA_FILE}: its columns suit the job")
    lines.append(f"next: edit it, then `launch doctor {made.job_file}` and "
                 f"`launch submit {made.job_file} --follow`")
    _emit(output, made, lines)


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
    target: str = typer.Option(None, "--target", metavar="KIND",
                               help="ray or kubernetes (overrides target.kind)."),
    address: str = Address,
    context: str = typer.Option(None, "--context", metavar="NAME",
                                help="kubeconfig context (overrides target.kubernetes.context)."),
    namespace: str = typer.Option(None, "--namespace", metavar="NAME", help="Kubernetes namespace "
                                  "(overrides target.kubernetes.namespace)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be created (the "
                                 "RayJob YAML for kubernetes, else the resolved spec); create, "
                                 "build and push nothing."),
    sets: list[str] = Sets,
    verbose: bool = Verbose,
    output: Format = Output,
) -> None:
    """Validate a job and run it on its target; print the run id and where to watch it."""
    from launcher import api
    from launcher.image.console import terminal_feedback
    from launcher.spec.load import merge_overrides, overrides_from_sets

    overrides = overrides_from_sets(sets or [])
    merge_overrides(overrides, _target_overrides(target, address, context, namespace))
    if dry_run:
        typer.echo(api.dry_run(job_file, overrides), nl=False)
        return
    run = api.submit(job_file, resume=resume, feedback=terminal_feedback(),
                     overrides=overrides)
    submitted = {"run_id": run.run_id, "attempt": run.attempt, "ray_job_id": run.ray_job_id,
                 "dashboard": api.target_of(run).dashboard_url(run.ray_job_id),
                 "results": run.run_dir}
    if output == Format.json:
        if follow:  # the log goes to stderr, the outcome into the document
            submitted["state"] = _follow(run, verbose, sys.stderr).state
        typer.echo(to_json(submitted))
        if follow and submitted["state"] != "SUCCEEDED":
            raise typer.Exit(JobFailed.exit_code)
        return
    typer.echo(f"submitted {run.run_id}" + (f" (attempt {run.attempt})" if resume else ""))
    typer.echo(f"  dashboard: {submitted['dashboard']}{_sign_in(run)}")
    typer.echo(f"  results:   {run.run_dir}")
    if follow:
        _finish(run, _follow(run, verbose))
    else:
        typer.echo(f"  follow:    launch logs {run.run_id} -f")


@app.command()
def build(
    job_file: Path = JobFile,
    builder: str = typer.Option(None, "--builder", help="auto, docker or oci (default: the "
                                "spec's image.builder)."),
    no_push: bool = typer.Option(False, "--no-push", help="Only build it here, with docker or "
                                 "buildah (for `launch kind load`); no registry is asked."),
    output: Format = Output,
) -> None:
    """Build and push the job's image (nothing when it is already in the registry); print its
    reference."""
    from launcher import api
    from launcher.image.console import terminal_feedback

    if builder not in (None, "auto", "docker", "oci"):
        raise LaunchError(f"--builder {builder}: use auto, docker or oci")
    image = api.build(job_file, builder, terminal_feedback(), push=not no_push)
    typer.echo(f"{image.builder} build in {image.seconds:.1f} s, {image.bytes_pushed} bytes "
               f"uploaded by launch (code layer {image.code_layer_bytes} bytes)", err=True)
    _emit(output, {"reference": image.reference, "runtime_reference": image.runtime_reference,
                   "builder": image.builder, "bytes_pushed": image.bytes_pushed,
                   "code_layer_bytes": image.code_layer_bytes, "seconds": image.seconds},
          [image.reference])


@app.command("run-image")
def run_image(
    job_file: Path = JobFile,
    results: Path = typer.Option(Path("smoke-runs"), "--results",
                                 help="Folder the smoke run's results go to."),
    output: Format = Output,
) -> None:
    """Build the job's image and run it here with podman/docker on tiny settings (1 worker,
    2 steps), so a missing dependency shows up before any cluster time is spent."""
    from launcher import api
    from launcher.image.console import terminal_feedback

    image, layout = api.run_image(job_file, results, terminal_feedback())
    _emit(output, {"reference": image.reference, "state": "SUCCEEDED", "results": layout.root},
          [f"{image.reference}: smoke run SUCCEEDED; results in {layout.root}"])


def _target_overrides(kind: str | None, address: str | None, context: str | None,
                      namespace: str | None) -> dict:
    """Spec overrides from the target flags (validated with the file, like its own values)."""
    kubernetes = {k: v for k, v in (("context", context), ("namespace", namespace)) if v}
    target = {**({"kind": kind} if kind else {}), **({"address": address} if address else {}),
              **({"kubernetes": kubernetes} if kubernetes else {})}
    return {"target": target} if target else {}


@app.command()
def status(run_id: str = RunId, address: str = Address, output: Format = Output) -> None:
    """The state of a run."""
    from launcher import api

    run = api.record(run_id, address)
    info = api.status(run)
    lines = [f"{run.run_id}: {info.state}"]
    if info.message and (info.state != "SUCCEEDED" or info.source == "storage"):
        lines.append(f"  {info.message.splitlines()[0]}")
    _emit(output, _run_info(run, info), lines)


@app.command()
def logs(
    run_id: str = RunId,
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep streaming until it ends."),
    address: str = Address,
    verbose: bool = Verbose,
    output: Format = Output,
) -> None:
    """A run's driver log (training progress, errors); followed on a terminal, with a
    progress bar (step/total, loss, tokens/s, ETA). With --output json: one document holding
    the whole log (after the run ends, with --follow)."""
    from launcher import api

    run = api.record(run_id, address)
    if output == Format.json:
        text = "".join(api.logs(run, follow=follow))
        state = api.wait(run, timeout_s=30).state if follow else None
        _emit(output, {"run_id": run.run_id, "state": state, "log": text}, [])
    elif follow:
        _finish(run, _follow(run, verbose))
    else:
        for chunk in api.logs(run, follow=False):
            typer.echo(chunk, nl=False)


@app.command("list")
def list_runs(
    address: str = Address,
    namespace: str = typer.Option(None, "--namespace", metavar="NAME", help="List the RayJobs "
                                  "launch created in this Kubernetes namespace instead."),
    context: str = typer.Option(None, "--context", metavar="NAME",
                                help="kubeconfig context for --namespace."),
    storage: str = typer.Option(None, "--storage", help="List the runs kept under this storage "
                                "URI instead (works without any Ray head)."),
    endpoint_url: str = typer.Option(None, "--endpoint-url", envvar="AWS_ENDPOINT_URL",
                                     help="S3 endpoint for --storage."),
    output: Format = Output,
) -> None:
    """The runs launch submitted to the Ray cluster at --address, or kept in --storage."""
    from launcher import api

    if storage:
        stored = api.stored_runs(storage, endpoint_url)
        rows = [(run.run_id, run.state, "" if run.eval_loss is None else f"{run.eval_loss:.4g}",
                 run.uri) for run in stored]
        _emit(output, stored, table(("RUN ID", "STATE", "EVAL LOSS", "RESULTS"), rows))
        return
    jobs = api.list_runs(address, namespace, context)
    if any(job.source == "storage" for job in jobs) and output != Format.json:
        typer.echo("the cluster does not answer: the runs submitted to it from here, as their "
                   "storage recorded them", err=True)
    rows = [(job.run_id, job.state, str(job.attempts),
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.start_time or 0)),
             job.run_dir or "") for job in jobs]
    _emit(output, jobs, table(("RUN ID", "STATE", "ATTEMPTS", "STARTED", "RESULTS"), rows))


@app.command()
def stop(run_id: str = typer.Argument(..., help="Run id.", show_default=False),
         address: str = Address, output: Format = Output) -> None:
    """Stop a running job."""
    from launcher import api

    run = api.record(run_id, address)
    info = api.stop(run)
    _emit(output, _run_info(run, info), [f"{run.run_id}: {info.state}"])


@app.command()
def results(
    run_id: str = RunId,
    download: Path = typer.Option(None, "--download", help="Also copy the model and every "
                                  "artifact but the checkpoints into this folder."),
    output: Format = Output,
) -> None:
    """A run's final metrics and where every artifact is (read from storage alone)."""
    from launcher import api

    run = api.record(run_id)
    outcome = api.results(run)
    count = api.download(run, download) if download else None
    metrics = [(key, f"{value:.4g}" if isinstance(value, float) else str(value))
               for key, value in outcome.summary.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)]
    lines = [f"{outcome.run_id}: {outcome.state}", f"results in {outcome.run_dir}", ""]
    if metrics:
        lines += [*table(("METRIC", "VALUE"), metrics), ""]
    headers, trials = api.sweep_trials(run)
    if trials:
        lines += [*table(headers, trials), ""]
    lines += table(("ARTIFACT", "PATH (in the results folder)"), list(outcome.artifacts.items()))
    if download:
        lines += ["", f"downloaded {count} files to {download}"]
    _emit(output, {**asdict(outcome), "trials": [dict(zip(headers, row)) for row in trials],
                   "downloaded": count}, lines)


@app.command()
def dashboard(run_id: str = RunId, output: Format = Output) -> None:
    """The Ray dashboard of a run; for kubernetes runs, a port-forward held until Ctrl-C."""
    from launcher import api

    run = api.record(run_id)
    target = api.target_of(run)
    with target.dashboard(run.ray_job_id) as url:
        _emit(output, {"run_id": run.run_id, "url": url}, [url + _sign_in(run)])
        sys.stdout.flush()  # a script reads the URL while the port-forward holds
        if target.forwards_dashboard:
            typer.echo("forwarding the dashboard to this machine; Ctrl-C to stop", err=True)
            while True:
                time.sleep(3600)


@kind_app.command("up")
def kind_up(dry_run: bool = DryRun, output: Format = Output) -> None:
    """Create the Kind cluster `launch` and a local image registry on 127.0.0.1:5001 wired
    into it, install KubeRay 1.7.0, the namespace, the launcher's Role and the S3 store; print
    the kube context to use."""
    from launcher.kube import kind

    context = kind.up(_kind_runner(dry_run))
    _emit(output, {"cluster": kind.CLUSTER, "context": context, "namespace": kind.NAMESPACE,
                   "registry": kind.REGISTRY_HOST, "dry_run": dry_run},
          [f"{'would be ' if dry_run else ''}ready: target.kubernetes.context: {context}, "
           f"namespace: {kind.NAMESPACE}; image.repository: {kind.REGISTRY_HOST}/…"])


@kind_app.command("down")
def kind_down(dry_run: bool = DryRun, output: Format = Output) -> None:
    """Delete the Kind cluster `launch` and its registry."""
    from launcher.kube import kind

    kind.down(_kind_runner(dry_run))
    _emit(output, {"cluster": kind.CLUSTER, "deleted": not dry_run},
          [f"kind cluster `{kind.CLUSTER}` {'would be ' if dry_run else ''}deleted"])


@kind_app.command("load")
def kind_load(image: str = typer.Argument(..., help="A local Docker image reference."),
              dry_run: bool = DryRun, output: Format = Output) -> None:
    """Load an image into the Kind node (`kind load docker-image`), for an image in no
    registry the node reaches; use with target.kubernetes.image_pull_policy: Never."""
    from launcher.kube import kind

    kind.load(_kind_runner(dry_run), image)
    _emit(output, {"cluster": kind.CLUSTER, "image": image, "loaded": not dry_run},
          [f"{image} {'would be ' if dry_run else ''}loaded into kind cluster `{kind.CLUSTER}`"])


def _kind_runner(dry_run: bool):
    from launcher.kube import kind

    return kind.Runner(lambda line: typer.echo(line, err=True), dry_run)


@local_app.command("up")
def local_up(address: str = Address, output: Format = Output) -> None:
    """Start a local Ray head (token auth on, listening on 127.0.0.1 only)."""
    from launcher import local_head, ray_auth, ray_dashboard
    from launcher.spec.target import is_loopback_url
    from launcher.targets import ray_address

    address = ray_address(address)
    if not is_loopback_url(address):
        raise LaunchError(f"launch local up starts a head on this machine only, and {address} "
                          "is not a loopback address; use http://127.0.0.1:PORT")
    if ray_dashboard.probe(address, ray_auth.headers_for(address)) is not None:
        _emit(output, {"address": address, "started": False},
              [f"a Ray head already answers at {address}"])
        return
    state = local_head.start(address)
    _emit(output, {"address": state.address, "started": True, "pgid": state.pgid,
                   "token_path": state.token_path},
          [f"Ray head started at {state.address} (process group {state.pgid}); "
           f"token in {state.token_path}"])


@local_app.command("down")
def local_down(output: Format = Output) -> None:
    """Stop the local Ray head that launch started (by its process group, never `ray stop`)."""
    from launcher import local_head

    stopped = local_head.stop()
    _emit(output, {"stopped": stopped}, ["local Ray head stopped" if stopped
                                         else "no Ray head started by launch is running"])


def _follow(run, verbose: bool = False, stream=None):
    """Stream the run's log to its end (with a progress bar on a terminal); its final info."""
    from launcher import api
    from launcher.progress import LogView

    with LogView(stream or sys.stdout, verbose=verbose) as view:
        for chunk in api.logs(run, follow=True):
            view.feed(chunk)
    return api.wait(run, timeout_s=30)


def _finish(run, info) -> None:
    typer.echo(f"{run.run_id}: {info.state}")
    if info.state != "SUCCEEDED":
        raise JobFailed(f"run {run.run_id} ended {info.state}: "
                        f"{(info.message or 'see launch logs').splitlines()[0]}")
    typer.echo(f"results: launch results {run.run_id}")


def _sign_in(run) -> str:
    """What the dashboard of a head launch started asks for first: its token."""
    from launcher import ray_auth

    address = run.target.get("address")
    token_file = address and ray_auth.dashboard_token_file(address)
    return f" (sign in with the token in {token_file})" if token_file else ""


def _run_info(run, info) -> dict:
    """A run's state for --output json: the Ray job's info under the run's own id."""
    return {**asdict(info), "run_id": run.run_id, "ray_job_id": run.ray_job_id}


def _emit(output: Format, document, lines: list[str]) -> None:
    """Print a result: `lines` for people, or `document` as one line of JSON."""
    if output == Format.json:
        typer.echo(to_json(document))
    else:
        for line in lines:
            typer.echo(line)
