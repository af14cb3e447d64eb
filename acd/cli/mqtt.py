"""``acd mqtt clear``: remove a site's retained topics from the broker."""

from __future__ import annotations

import asyncio

import click

from acd.cli.common import config_option, emit_json, fail, json_option
from acd.cli.monitor import broker_connection, host_option, load_site, port_option, site_option


@click.group()
def mqtt() -> None:
    """The site's topics on the MQTT broker."""


@mqtt.command(
    short_help="Remove the retained topics of a site from the broker.",
    epilog="""\b
Examples:
  acd mqtt clear --site old-town-hall            # asks before removing anything
  acd mqtt clear --config site.toml --yes
\b
Credentials: [mqtt] of the configuration, or ACD_MQTT_USERNAME / ACD_MQTT_PASSWORD;
the broker's ACL must let that user publish under the site's tree.
""",
)
@config_option
@site_option
@host_option
@port_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Clear even while the site's controller is online.")
@json_option
def clear(
    config_path: str | None,
    site: str | None,
    host: str | None,
    port: int | None,
    yes: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Remove the retained topics of a site (renamed or retired) from the broker.

    Reads every retained topic under <prefix>/<site>/, shows how many there are, asks
    for confirmation, then publishes an empty retained message on each (how MQTT
    deletes a retained message) and reads the tree again to check. Refused while the
    site's controller is online (it would publish its state again) unless --force.
    """
    from drivers.mqtt_retained import clear as clear_topics
    from drivers.mqtt_retained import controller_online, retained_topics

    conn = broker_connection(load_site(config_path), site, host, port)
    where = f"{conn.topics.base}/ on {conn.where}"
    found = asyncio.run(retained_topics(conn))
    if not found:
        if as_json:
            emit_json({"site": conn.site, "cleared": [], "left": []})
        else:
            click.echo(f"no retained topics under {where}")
        return
    if controller_online(conn, found) and not force:
        fail(
            f"the controller of site {conn.site} is online: it would publish its state again;"
            " stop it first (or give --force)"
        )
    topics = sorted(found)
    if not yes:
        for topic in topics[:10]:
            click.echo(f"  {topic}", err=True)
        if len(topics) > 10:
            click.echo(f"  ... and {len(topics) - 10} more", err=True)
        if not click.confirm(f"Remove {len(topics)} retained topics under {where}?", err=True):
            fail("nothing removed")
    left = asyncio.run(clear_topics(conn, topics))
    if as_json:
        emit_json({"site": conn.site, "cleared": topics, "left": left})
    else:
        click.echo(f"removed {len(topics) - len(left)} retained topics under {where}")
    if left:
        fail(f"{len(left)} topics were published again meanwhile: {', '.join(left[:5])}")
