"""The TLS context of the broker connection, built once from ``[mqtt]`` tls, ca_file,
cert_file and key_file; an unreadable or invalid file is a `ConfigError` naming its key."""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

from acd.errors import ConfigError
from drivers.settings import MqttSettings


@functools.cache
def tls_context(config: MqttSettings) -> ssl.SSLContext | None:
    """None without ``tls``; else a context that checks the broker's certificate and
    host name against ``ca_file`` (default: the system CAs) and presents the client
    certificate ``cert_file`` (its key in ``key_file`` or in the same file), if set.
    Built once per configuration: a renewed certificate takes effect at the next start."""
    if not config.tls:
        return None
    files = {"ca_file": config.ca_file, "cert_file": config.cert_file, "key_file": config.key_file}
    for key, path in files.items():
        if path is not None:
            try:
                Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"mqtt.{key}", f"cannot read {path}: {exc.strerror}") from None
    try:
        context = ssl.create_default_context(cafile=config.ca_file)
    except ssl.SSLError as exc:
        raise ConfigError("mqtt.ca_file", f"no CA certificate in {config.ca_file}: {exc}") from None
    if config.cert_file is not None:
        try:  # password "": an encrypted key fails here instead of prompting on a tty
            context.load_cert_chain(config.cert_file, config.key_file, password="")
        except ssl.SSLError as exc:
            problem = f"not a certificate and its private key (unencrypted PEM): {exc}"
            raise ConfigError("mqtt.cert_file", problem) from None
    return context
