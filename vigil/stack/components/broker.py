"""RabbitMQ (the async order pipeline) and the Erlang port mapper it registers with."""

from __future__ import annotations

from pathlib import Path

from vigil.stack.component import Component, ProbeError, http_probe, port_open

RABBITMQ_SCRIPTS = Path("/usr/lib/rabbitmq/bin")


class Epmd(Component):
    """Erlang's port mapper, started by us so that it binds to loopback and stops with the stack."""

    name = "epmd"
    apt_packages = ("erlang-base",)
    executables = ("epmd",)
    start_timeout = 15.0

    @property
    def port(self) -> int:
        return self.settings.epmd_port

    @property
    def url(self) -> str:
        return f"epmd://{self.settings.host}:{self.port}"

    def command(self) -> list[str]:
        return ["epmd", "-address", self.settings.host, "-port", str(self.port)]

    def probe(self) -> None:
        if not port_open(self.settings.host, self.port):
            raise ProbeError(f"port {self.port} not listening")


class RabbitMQ(Component):
    name = "rabbitmq"
    apt_packages = ("rabbitmq-server",)
    executables = (str(RABBITMQ_SCRIPTS / "rabbitmq-server"),)
    start_timeout = 120.0

    @property
    def port(self) -> int:
        return self.settings.rabbitmq_port

    @property
    def url(self) -> str:
        return f"amqp://{self.settings.host}:{self.port}"

    def prepare(self) -> None:
        s = self.settings
        for sub in ("home", "mnesia", "log", "config"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        (self.directory / "config" / "advanced.config").write_text("[].\n")
        (self.directory / "config" / "enabled_plugins").write_text(
            "[rabbitmq_management,rabbitmq_prometheus].\n"
        )
        (self.directory / "config" / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = {s.host}:{s.rabbitmq_port}",
                    f"management.tcp.ip = {s.host}",
                    f"management.tcp.port = {s.rabbitmq_management_port}",
                    f"prometheus.tcp.ip = {s.host}",
                    f"prometheus.tcp.port = {s.rabbitmq_prometheus_port}",
                    f"default_user = {s.rabbitmq_user}",
                    f"default_pass = {s.rabbitmq_password}",
                    "default_user_tags.administrator = true",
                    "log.console = true",
                    "log.console.level = info",
                    "log.file = false",
                    # The demo machine has little free disk at times; 1 GB is plenty for its queues.
                    "disk_free_limit.absolute = 200MB",
                    "",
                ]
            )
        )

    def environment(self) -> dict[str, str]:
        s, d = self.settings, self.directory
        erlang_ip = s.host.replace(".", ",")
        return {
            "HOME": str(d / "home"),  # the Erlang cookie lives here
            "RABBITMQ_CONF_ENV_FILE": "/dev/null",  # ignore the system-wide rabbitmq-env.conf
            "RABBITMQ_NODENAME": "vigil@localhost",
            "RABBITMQ_CONFIG_FILE": str(d / "config" / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "config" / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "config" / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_DIST_PORT": str(s.rabbitmq_dist_port),
            "ERL_EPMD_PORT": str(s.epmd_port),
            "ERL_EPMD_ADDRESS": s.host,
            # Erlang distribution listens on loopback only, like everything else in the stack.
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"-kernel inet_dist_use_interface {{{erlang_ip}}}",
        }

    def command(self) -> list[str]:
        return [str(RABBITMQ_SCRIPTS / "rabbitmq-server")]

    def probe(self) -> None:
        s = self.settings
        http_probe(
            f"{s.rabbitmq_management_url}/api/health/checks/alarms",
            auth=(s.rabbitmq_user, s.rabbitmq_password),
        )
        http_probe(f"http://{s.host}:{s.rabbitmq_prometheus_port}/metrics", expect="rabbitmq_")
