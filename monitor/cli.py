"""newsmon's command line: a thin layer over the pipeline and storage.

Every NewsmonError becomes one line on stderr and exit code 2; no tracebacks for things a
user can fix.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime, timedelta

import click

from monitor import __version__
from monitor.app import App
from monitor.config import load_settings, parse_duration
from monitor.errors import NewsmonError
from monitor.model import Kind

log = logging.getLogger("newsmon")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                           "level": record.levelname.lower(), "logger": record.name,
                           "message": record.getMessage()})


def _setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries' own chatter (a line per request, per scheduler tick, per migration step)
    # only at debug; newsmon's info lines are the ones a person reads.
    for chatty in ("httpx", "apscheduler", "alembic"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level) if root.level > logging.DEBUG
                                           else logging.DEBUG)


class NewsmonGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except NewsmonError as error:
            click.echo(f"newsmon: {error}", err=True)
            ctx.exit(2)


def _app(ctx: click.Context) -> App:
    obj = ctx.find_root().obj
    if "app" not in obj:
        obj["app"] = App(load_settings(obj["config"]))
    return obj["app"]


def _emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group(cls=NewsmonGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="newsmon")
@click.option("--config", "config", type=click.Path(dir_okay=False), envvar="NEWSMON_CONFIG",
              help="TOML config file (default: none — SQLite in ./data, the ./seeds feed, ./rules).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), envvar="NEWSMON_LOG_LEVEL")
@click.option("--log-format", default="text", show_default=True, type=click.Choice(["text", "json"]),
              envvar="NEWSMON_LOG_FORMAT", help="json: one JSON object per line, for machines.")
@click.pass_context
def cli(ctx: click.Context, config: str | None, log_level: str, log_format: str) -> None:
    """newsmon watches news feeds, groups reports into stories and alerts on what is new.

    \b
    Start here:
      newsmon run --once          poll every feed once, store, alert
      newsmon stories list        the stories found
      newsmon developments list   what each new report added
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config
    _setup_logging(log_level, log_format)


# --- run -------------------------------------------------------------------------------------
@cli.command()
@click.option("--once", is_flag=True, help="Poll every feed once, deliver the alerts, and exit.")
@click.pass_context
def run(ctx: click.Context, once: bool) -> None:
    """Poll the feeds and alert on developments (the daemon, or one pass with --once).

    \b
    Examples:
      newsmon run --once
      newsmon --config newsmon.toml --log-level info run
    """
    from monitor import polling

    app = _app(ctx)
    polling.tune_gc()
    if not once:
        from monitor.daemon import run_daemon

        asyncio.run(run_daemon(app))
        return
    from monitor import alerts

    notifiers = app.build_notifiers()  # config errors first, then rule files
    ruleset = app.load_rules()
    polling.sync_config_feeds(app.db, app.settings.feeds, app.settings.feeds_are_fixture)
    reports = asyncio.run(_poll_once(app, ruleset))
    delivery = alerts.deliver_due(app.db, notifiers, drain=True)
    for report in reports:
        if report.status == "failed":
            click.echo(f"feed {report.feed}: FAILED: {report.error}", err=True)
        else:
            click.echo(f"feed {report.feed}: {report.status}, {report.new_articles} new article(s), "
                       f"{report.new_developments} development(s)"
                       + (f"; {len(report.failed)} entry(ies) could not be stored and wait for the next run "
                          f"(the error is logged): {', '.join(raw.guid for raw in report.failed[:3])}"
                          if report.failed else ""), err=True)
    waiting = sum(delivery.waiting.values())
    click.echo(f"alerts: {delivery.sent} sent, {delivery.failed} failed (will retry), {delivery.dead} dead"
               + (f", {waiting} waiting for an unconfigured channel" if waiting else ""), err=True)


async def _poll_once(app: App, ruleset):
    from monitor import polling
    from monitor.fetch.http import make_client

    client = make_client()  # feeds added with `feeds add` are in the database, not the config
    try:
        return await polling.poll_once(app.db, app.settings, ruleset, client)
    finally:
        await client.aclose()


# --- stories ---------------------------------------------------------------------------------
@cli.group()
def stories() -> None:
    """Stories: reports of one event, grouped."""


@stories.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON (fields: docs/json.md).")
@click.pass_context
def stories_list(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The most recently active stories."""
    from storage.listing import list_stories

    with _app(ctx).db.session() as session:
        data = list_stories(session, limit)
    if as_json:
        return _emit_json(data)
    if not data:
        click.echo("no stories yet — try `newsmon run --once`")
    for story in data:
        click.echo(f"#{story['id']:<5} {story['last_seen'][:16]}  {story['article_count']} article(s)  "
                   f"{story['title']}")


@stories.command("show")
@click.argument("story_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON (fields: docs/json.md).")
@click.pass_context
def stories_show(ctx: click.Context, story_id: int, as_json: bool) -> None:
    """A story's timeline: its articles and developments in order."""
    from storage.listing import story_timeline

    with _app(ctx).db.session() as session:
        data = story_timeline(session, story_id)
    if data is None:
        raise click.ClickException(f"no story with id {story_id}")
    if as_json:
        return _emit_json(data)
    click.echo(f"Story #{data['id']}: {data['title']}")
    click.echo(f"  first seen {data['first_seen']}, last seen {data['last_seen']}")
    events = [(a["published_at"], 0, a) for a in data["articles"]] + \
             [(d["published_at"], 1, d) for d in data["developments"]]
    for _, is_dev, item in sorted(events, key=lambda e: (e[0], e[1])):
        if is_dev:
            click.echo(f"    + [{item['kind']}] #{item['id']} (score {item['score']:.2f}) {item['text']}")
        else:
            click.echo(f"  {item['published_at'][:16]}  {item['source']}: {item['title']}")


# --- developments ------------------------------------------------------------------------------
@cli.group()
def developments() -> None:
    """Developments: what a report added to its story."""


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(value))
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--since") from None


@developments.command("list")
@click.option("--story", "story_id", type=int, help="Only this story.")
@click.option("--since", help="Only those detected within this long, e.g. 2h, 3d.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(Kind.ALL), help="Only these kinds.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON (fields: docs/json.md).")
@click.pass_context
def developments_list(ctx, story_id, since, kinds, limit, as_json) -> None:
    """Developments, newest first."""
    from storage.listing import list_developments

    with _app(ctx).db.session() as session:
        views = list_developments(session, story_id, _since(since), list(kinds), limit)
    if as_json:
        return _emit_json([v.to_json() for v in views])
    if not views:
        click.echo("no developments match")
    for v in views:
        click.echo(f"#{v.id:<5} [{v.kind}] story #{v.story_id}  score {v.score:.2f}  {v.source}\n       {v.text}")


@developments.command("show")
@click.argument("development_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def developments_show(ctx, development_id: int, as_json: bool) -> None:
    """One development and why newsmon thinks it is new."""
    from storage.queries import load_development_views

    with _app(ctx).db.session() as session:
        view = load_development_views(session, [development_id]).get(development_id)
    if view is None:
        raise click.ClickException(f"no development with id {development_id}")
    if as_json:
        return _emit_json(view.to_json())
    click.echo(_explain(view))


def _explain(view) -> str:
    """The development and the reason newsmon thinks it is new, for a person."""
    details = view.details or {}
    lines = [f"Development #{view.id} [{view.kind}]  score {view.score:.2f}",
             f"Story #{view.story_id}: {view.story_title}",
             f"Article #{view.article_id}: {view.article_title}",
             f"  {view.source} — {view.article_url or 'no URL'}",
             f"  published {view.published_at:%Y-%m-%d %H:%M} UTC, detected {view.detected_at:%Y-%m-%d %H:%M} UTC",
             "", "What is new:", f"  {view.text}"]
    for figure in details.get("figures", []):
        lines.append(f"  figure changed: {figure['old']} → {figure['new']}  (was: {details.get('earlier')})")
    if details.get("dates"):
        lines.append("  dates the story had not had: " + ", ".join(details["dates"]))
    if details.get("edit"):
        lines.append(f"  edit: {details['edit']} (version {details.get('version')})")
    lines.append("")
    lines.append(f"Reported by {len(view.sources)} source(s): " + ", ".join(s.source for s in view.sources))
    lines.append("")
    evidence = details.get("evidence") or ([{"text": view.closest_text, "similarity": view.closest_similarity,
                                              "source": "?"}] if view.closest_text else [])
    if not evidence:
        lines.append("Why new: the first report of this story.")
    else:
        lines.append("Why new — the closest things the story had already said "
                     "(similarity = share of the new text they already held):")
        for item in evidence:
            lines.append(f"  {item['similarity']:.2f}  [{item.get('source', '?')}] {item['text']}")
    return "\n".join(lines)


# --- feeds -----------------------------------------------------------------------------------
@cli.group()
def feeds() -> None:
    """Feeds: where articles come from."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON (fields: docs/json.md).")
@click.pass_context
def feeds_list(ctx: click.Context, as_json: bool) -> None:
    """Every feed with its status, last success, last error, next poll and articles seen."""
    from monitor import feeds as manage
    from monitor import polling
    from storage.listing import list_feeds

    app = _app(ctx)
    polling.sync_config_feeds(app.db, app.settings.feeds, app.settings.feeds_are_fixture)
    with app.db.session() as session:
        data = list_feeds(session)
    if as_json:
        return _emit_json(data)
    if not data:
        click.echo("no feeds yet — try `newsmon feeds add URL`")
    now = datetime.now(UTC)
    for row in data:
        click.echo("\n".join(manage.describe(row, now)))


@feeds.command("add")
@click.argument("url")
@click.option("--interval", help="Poll this feed on its own interval (e.g. 10m) instead of adaptively.")
@click.option("--full-text", is_flag=True, help="Fetch each entry's article page (entries with only a summary).")
@click.pass_context
def feeds_add(ctx: click.Context, url: str, interval: str | None, full_text: bool) -> None:
    """Check a feed URL once and add it; given a web page, find the feeds it advertises.

    \b
    Examples:
      newsmon feeds add https://www.example.org/world/rss.xml --interval 10m
      newsmon feeds add https://www.example.org/          # a page: lists its feed links
    """
    from monitor import feeds as manage
    from monitor.errors import FeedError

    app = _app(ctx)
    seconds = _duration(interval, "--interval")
    if not url.startswith(("http://", "https://")):
        feed_id, note = manage.add(app.db, url, interval=seconds, full_text=full_text)
        return click.echo(f"feed #{feed_id} {note}: folder {url}")
    found = asyncio.run(manage.check(url, app.settings))
    if not found.ok and len(found.links) == 1:
        click.echo(f"{url} is a web page; it advertises the feed {found.links[0].url}")
        found = asyncio.run(manage.check(found.links[0].url, app.settings))
    if not found.ok and found.links:
        click.echo(f"{url} is a web page that advertises {len(found.links)} feeds:")
        for link in found.links:
            click.echo(f"  {link.url}" + (f"  ({link.title})" if link.title else ""))
        raise click.ClickException("add one of them with `newsmon feeds add URL`")
    if not found.ok:
        raise FeedError(url, found.error or "not a feed")
    feed_id, note = manage.add(app.db, found.url, title=found.title, interval=seconds, full_text=full_text)
    entries = f"{found.entries} {'entry' if found.entries == 1 else 'entries'}"
    click.echo(f"feed #{feed_id} {note}: {found.title or 'untitled'} — {entries} ({found.url})")


def _duration(value: str | None, hint: str) -> float | None:
    try:
        return parse_duration(value) if value else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint=hint) from None


@feeds.command("remove")
@click.argument("feed")
@click.pass_context
def feeds_remove(ctx: click.Context, feed: str) -> None:
    """Stop watching a feed, given its id or URL (one with articles is kept, disabled)."""
    from monitor import feeds as manage

    click.echo(manage.remove(_app(ctx).db, feed))


@feeds.command("import")
@click.argument("opml", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def feeds_import(ctx: click.Context, opml: str) -> None:
    """Add every feed of an OPML file (as exported by feed readers); they are checked when polled."""
    from pathlib import Path

    from monitor import feeds as manage

    added, known = manage.import_opml(_app(ctx).db, Path(opml))
    click.echo(f"{len(added)} feed(s) added, {len(known)} already watched")


@feeds.command("export")
@click.pass_context
def feeds_export(ctx: click.Context) -> None:
    """Print every enabled HTTP feed as OPML (for feed readers, or `feeds import` elsewhere)."""
    from monitor import feeds as manage

    click.echo(manage.export_opml(_app(ctx).db), nl=False)


# --- alerts ----------------------------------------------------------------------------------
@cli.group()
def alerts() -> None:
    """Alerts: the outbox of notifications."""


@alerts.command("list")
@click.option("--status", type=click.Choice(["pending", "sent", "failed", "dead"]))
@click.option("--since", help="Only those created within this long, e.g. 2h, 3d.")
@click.option("--limit", default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON (fields: docs/json.md).")
@click.pass_context
def alerts_list(ctx, status, since, limit, as_json) -> None:
    """Alerts, newest first, with their delivery status."""
    from monitor.alerts import list_alerts

    with _app(ctx).db.session() as session:
        data = list_alerts(session, status=status, since=_since(since), limit=limit)
    if as_json:
        return _emit_json(data)
    for a in data:
        click.echo(f"#{a['id']:<5} {a['status']:<8} {a['rule']} → {a['channel']}  dev #{a['development_id']}"
                   + (f"  ({a['last_error']})" if a.get("last_error") else ""))


# --- db --------------------------------------------------------------------------------------
@cli.group()
def db() -> None:
    """The database: schema and upkeep."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Apply pending migrations (newsmon also does this by itself on start)."""
    from storage.db import Database

    database = Database(_app(ctx).settings.database_url)
    before = database.current_revision()
    database.upgrade()
    click.echo(f"database at revision {database.current_revision()} (was {before or 'empty'})")


@db.command("vacuum")
@click.pass_context
def db_vacuum(ctx: click.Context) -> None:
    """Rebuild the database compactly (SQLite: VACUUM; PostgreSQL: VACUUM ANALYZE). A long
    history runs faster after it; on SQLite it holds the write lock while it runs, so a
    daemon's polls wait (README: Upkeep)."""
    import time

    from storage.db import Database

    database = Database(_app(ctx).settings.database_url)
    database.ensure_schema()
    path = database.sqlite_path()
    before = path.stat().st_size if path else None
    started = time.monotonic()
    database.vacuum()
    took = time.monotonic() - started
    if path is not None:
        after = path.stat().st_size
        click.echo(f"vacuumed {path} in {took:.1f} s: {before / 1e6:.1f} MB → {after / 1e6:.1f} MB")
    else:
        click.echo(f"vacuumed and analysed in {took:.1f} s")


def main() -> None:
    cli(prog_name="newsmon")
