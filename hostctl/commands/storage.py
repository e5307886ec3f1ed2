"""``hostctl storage``: S3 storages (list, create, delete), their buckets, credentials and
usage."""

import sys
from datetime import datetime, timezone
from typing import Annotated, Optional

import typer

from hostctl.commands.common import current, gigabytes
from hostctl.context import CliError, OutputOption, TimeoutOption, WaitOption, choice
from hostctl.follow import finish_operation
from hostctl.output import emit_list, emit_record, say

app = typer.Typer(no_args_is_help=True)
StorageArg = Annotated[str, typer.Argument(help="The storage's id (hostctl storage list).")]


@app.command("list")
def list_storages(ctx: typer.Context, output: OutputOption = None):
    """Your separate S3 storages."""
    state = current(ctx)
    items = list(state.client.all_pages("/storage/s3"))
    emit_list(state.fmt(output), items, [
        ("ID", "id"), ("Storage", "name"), ("Limit (GB)", "limit_gb"), ("Location", "location"),
        ("s3uid", "s3uid"), ("Used", lambda s: gigabytes(s.get("used_bytes")))], title="storages")


@app.command()
def locations(ctx: typer.Context, output: OutputOption = None):
    """Where a storage can be created."""
    state = current(ctx)
    answer = state.client.get("/storage/s3/locations")
    emit_list(state.fmt(output), answer["items"], [("Code", "code"), ("Name", "name"), ("Endpoint", "endpoint")],
              title="locations", raw=answer)


@app.command()
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name for it.")],
    limit_gb: Annotated[float, typer.Option("--limit-gb", help="The size limit in GB.")],
    location: Annotated[str, typer.Option(help="Where (hostctl storage locations).")],
    output: OutputOption = None,
):
    """Create an S3 storage."""
    state = current(ctx)
    created = state.client.post("/storage/s3", {"name": name, "limit_gb": limit_gb, "location": location.upper()})
    if state.fmt(output) == "json":
        emit_record("json", created)
    else:
        say(f"Storage {created['name']} created: id {created['id']}, {created['limit_gb']:g} GB in "
            f"{created['location']}, s3uid {created['s3uid']}.")


@app.command()
def delete(
    ctx: typer.Context,
    storage: StorageArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = 300.0,
    output: OutputOption = None,
):
    """Delete a storage with every bucket and object in it."""
    state = current(ctx)
    if not yes:
        if not sys.stdin.isatty():
            raise CliError("Deleting a storage deletes every object in it: confirm with --yes.")
        typer.confirm(f"Delete storage {storage} and everything in it?", abort=True)
    accepted = state.client.delete(f"/storage/s3/{storage}")
    finish_operation(state, accepted["operation"], wait, timeout, output)


@app.command()
def buckets(ctx: typer.Context, storage: StorageArg, output: OutputOption = None):
    """The buckets of a storage."""
    state = current(ctx)
    items = list(state.client.all_pages(f"/storage/s3/{storage}/buckets"))
    emit_list(state.fmt(output), items, [("Bucket", "name"), ("Status", "status"), ("Created", "created_at")],
              title="buckets")


@app.command("bucket-create")
def bucket_create(ctx: typer.Context, storage: StorageArg,
                  name: Annotated[str, typer.Argument(help="The bucket's name (S3 naming rules).")],
                  wait: WaitOption = False, timeout: TimeoutOption = 120.0, output: OutputOption = None):
    """Create a bucket in a storage."""
    state = current(ctx)
    accepted = state.client.post(f"/storage/s3/{storage}/buckets", {"name": name})
    finish_operation(state, accepted["operation"], wait, timeout, output)


@app.command("bucket-delete")
def bucket_delete(ctx: typer.Context, storage: StorageArg, name: Annotated[str, typer.Argument()],
                  force: Annotated[bool, typer.Option("--force", help="Also delete the bucket's objects.")] = False,
                  wait: WaitOption = False, timeout: TimeoutOption = 120.0, output: OutputOption = None):
    """Delete a bucket (an empty one, unless --force)."""
    state = current(ctx)
    accepted = state.client.delete(f"/storage/s3/{storage}/buckets/{name}", **({"force": "true"} if force else {}))
    finish_operation(state, accepted["operation"], wait, timeout, output)


@app.command()
def credentials(
    ctx: typer.Context,
    storage: StorageArg,
    rotate: Annotated[bool, typer.Option("--rotate", help="Replace the keys: the old ones stop working.")] = False,
    output: OutputOption = None,
):
    """What an S3 client needs: access key, secret key, endpoints, region."""
    state = current(ctx)
    if rotate:
        keys = state.client.post(f"/storage/s3/{storage}/credentials/rotate")
    else:
        keys = state.client.get(f"/storage/s3/{storage}/credentials")
    emit_record(state.fmt(output), keys, [("Access key", "access_key"), ("Secret key", "secret_key"),
                                          ("Endpoints", "endpoints"), ("Region", "region"),
                                          ("Path style", "path_style")])


@app.command()
def usage(
    ctx: typer.Context,
    storage: StorageArg,
    metric: Annotated[choice(["storage", "bandwidth"]), typer.Option()] = "storage",
    start: Annotated[Optional[str], typer.Option("--from", help="ISO 8601 start (default: a day ago).")] = None,
    end: Annotated[Optional[str], typer.Option("--to", help="ISO 8601 end (default: now).")] = None,
    step: Annotated[Optional[int], typer.Option(help="Seconds per point.")] = None,
    output: OutputOption = None,
):
    """Storage or bandwidth usage over a period, one row per point."""
    state = current(ctx)
    answer = state.client.get(f"/storage/s3/{storage}/usage", metric=metric, step=step, **{"from": start, "to": end})
    points = [{"at": datetime.fromtimestamp(at, timezone.utc).isoformat(), "bytes": value}
              for at, value in answer["points"]]
    emit_list(state.fmt(output), points, [("At", "at"), ("Bytes", "bytes"), ("GB", lambda p: gigabytes(p["bytes"]))],
              title=f"{metric} usage", raw=answer)
