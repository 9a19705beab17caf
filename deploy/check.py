#!/usr/bin/env python3
"""`make deploy-check`: validates everything under deploy/ offline.

The linters and schema validators (installed by the Makefile into .tools/) check each file
on its own; the rest of this script checks what no single tool sees: that the files agree
with each other and with the server (ports, paths, the shutdown grace against every
orchestrator's stop timeout, the ConfigMap against deploy/config.yaml, the configuration
against the binary's own validation).

Usage: deploy/check.py --binary target/debug/streamhub [--tools .tools/bin]
"""

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
STATE_DIR = "/var/lib/streamhub"
CONF_DIR = "/etc/streamhub"
GRPC_PORT = 9000


class Report:
    """Collects the outcome of every check; the last line is the tally."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def ok(self, what):
        self.passed += 1
        print(f"ok    {what}")

    def fail(self, what, why):
        self.failed.append(what)
        print(f"FAIL  {what}: {why}")

    def expect(self, condition, what, why):
        if condition:
            self.ok(what)
        else:
            self.fail(what, why)

    def run(self, what, command, **kwargs):
        """Runs a tool; its output is shown only when it fails."""
        result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
        if result.returncode == 0:
            self.ok(what)
        else:
            output = (result.stdout + result.stderr).strip()
            self.fail(what, f"exit {result.returncode}\n{output}")
        return result

    def notice(self, what):
        print(f"skip  {what}")


def duration_seconds(text):
    """Seconds of a duration written like the config's (500ms, 10s, 1m, 2h) or compose's."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text)):
        total += float(amount) * units[unit]
    if total == 0 and str(text).strip() not in ("0", "0s"):
        raise ValueError(f"cannot read the duration {text!r}")
    return total


def leaves(tree, prefix=""):
    """The leaves of a YAML mapping, by dotted key path."""
    found = {}
    for key, value in (tree or {}).items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            found.update(leaves(value, path + "."))
        else:
            found[path] = value
    return found


def merged(base, override):
    """`override` laid over `base` key by key, as the server merges its configuration files."""
    result = dict(base or {})
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def deployed_config():
    """What the deployed server runs with: the defaults (configs/config.yaml, which a test in
    internal/conf keeps equal to the built-in ones) overlaid with deploy/config.yaml, which
    holds only what a deployment changes."""
    defaults = yaml.safe_load((ROOT / "configs" / "config.yaml").read_text())
    return merged(defaults, yaml.safe_load((DEPLOY / "config.yaml").read_text()))


def port_of(addr):
    return int(str(addr).rsplit(":", 1)[1])


def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        pairs.append((word.upper(), rest.strip()))
    return pairs


def unit_settings(text):
    """systemd unit settings as name -> list of values."""
    settings = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        name, _, value = line.partition("=")
        settings.setdefault(name.strip(), []).append(value.strip())
    return settings


def lint(report, tools):
    report.run("hadolint deploy/Dockerfile", [tools / "hadolint", DEPLOY / "Dockerfile"])
    report.run(
        "yamllint deploy/ configs/",
        [tools / "yamllint", "--strict", "-c", DEPLOY / "yamllint.yaml", DEPLOY, ROOT / "configs"],
    )
    report.run(
        "compose-spec schema: deploy/docker-compose.yaml",
        [
            tools / "check-jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            DEPLOY / "docker-compose.yaml",
        ],
    )


def kubernetes(report, tools, scratch):
    """Renders the kustomization when a kustomize is at hand, then validates the manifests
    against the Kubernetes schemas. Returns the rendered objects by kind."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    if shutil.which("kustomize"):
        render = ["kustomize", "build", K8S]
    elif shutil.which("kubectl"):
        render = ["kubectl", "kustomize", K8S]
    else:
        render = None
    if render:
        result = report.run(f"kustomize render ({render[0]})", render)
        manifests = [scratch / "rendered.yaml"]
        manifests[0].write_text(result.stdout)
    else:
        report.notice("kustomize render: neither kustomize nor kubectl found; validating each file")
        manifests = [K8S / name for name in kustomization["resources"]]
    report.run(
        "kubernetes-validate --strict (k8s 1.37 schemas)",
        [tools / "kubernetes-validate", "--strict", "--quiet", *manifests],
    )
    objects = {}
    for manifest in manifests:
        for document in yaml.safe_load_all(manifest.read_text()):
            if document:
                objects[document["kind"]] = document
    return objects


def systemd(report, binary, scratch):
    unit = DEPLOY / "systemd" / "streamhub.service"
    if not shutil.which("systemd-analyze"):
        report.notice("systemd-analyze verify: systemd-analyze is not installed here")
        return
    # verify insists that ExecStart's program exists: point it at the binary just built.
    copy = scratch / "streamhub.service"
    copy.write_text(unit.read_text().replace("/usr/local/bin/streamhub", str(binary)))
    report.run("systemd-analyze verify streamhub.service", ["systemd-analyze", "verify", copy])
    # Exposure 0 (locked down) to 10 (unprotected); the threshold is in tenths.
    report.run(
        "systemd-analyze security: exposure at most 2.0",
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", copy],
    )


def configuration(report, binary, objects):
    """The deployed configuration parses in the binary and agrees with the ConfigMap."""
    deployed = DEPLOY / "config.yaml"
    if not binary.is_file():
        report.fail("streamhub -check-config", f"{binary} missing: cargo build --bin streamhub")
    else:
        for name, path in [("deploy/config.yaml", deployed), ("configs/", ROOT / "configs")]:
            report.run(
                f"streamhub -check-config {name}",
                [binary, "-conf", path, "-check-config"],
                # The file alone must be valid, not the file plus this shell's overrides.
                env={"PATH": "/usr/bin:/bin"},
            )
    configmap = objects.get("ConfigMap", {}).get("data", {}).get("config.yaml")
    report.expect(
        configmap == deployed.read_text(),
        "k8s ConfigMap config.yaml equals deploy/config.yaml",
        "the texts differ; copy deploy/config.yaml into deploy/k8s/configmap.yaml",
    )
    defaults = leaves(yaml.safe_load((ROOT / "configs" / "config.yaml").read_text()))
    overrides = leaves(yaml.safe_load(deployed.read_text()))
    unknown = set(overrides) - set(defaults)
    report.expect(
        not unknown,
        "deploy/config.yaml uses only keys of configs/config.yaml",
        f"unknown keys {sorted(unknown)}",
    )
    restated = sorted(key for key, value in overrides.items() if defaults.get(key) == value)
    report.expect(
        not restated,
        "deploy/config.yaml sets only keys that differ from the defaults",
        f"{restated} restate configs/config.yaml; leave them out",
    )


def invariants(report, objects):
    config = deployed_config()
    server = config["server"]
    grace = duration_seconds(server["grpc"]["shutdown_grace"])
    grpc_port = port_of(server["grpc"]["addr"])
    metrics_addr = (server.get("metrics") or {}).get("addr")
    metrics_port = port_of(metrics_addr) if metrics_addr else None
    report.expect(grpc_port == GRPC_PORT, "gRPC listens on 9000", f"server.grpc.addr port {grpc_port}")
    for key in ("source", "root"):
        section = "database" if key == "source" else "storage"
        value = config["data"][section][key]
        report.expect(
            STATE_DIR in value,
            f"data.{section}.{key} is under {STATE_DIR}",
            f"{value!r} would not be on the state volume",
        )

    # Dockerfile
    docker = dockerfile_instructions((DEPLOY / "Dockerfile").read_text())
    exposed = {int(p.split("/")[0]) for word, rest in docker if word == "EXPOSE" for p in rest.split()}
    volumes = [rest for word, rest in docker if word == "VOLUME"]
    health = " ".join(rest for word, rest in docker if word == "HEALTHCHECK")
    cmd = " ".join(rest for word, rest in docker if word == "CMD")
    users = [rest for word, rest in docker if word == "USER"]
    report.expect(GRPC_PORT in exposed, "Dockerfile EXPOSE 9000", f"exposes {sorted(exposed)}")
    if metrics_port:
        report.expect(
            metrics_port in exposed, f"Dockerfile EXPOSE {metrics_port} (metrics)", f"{sorted(exposed)}"
        )
    report.expect(
        all(any(path in v for v in volumes) for path in (STATE_DIR, CONF_DIR)),
        "Dockerfile VOLUME holds config and state",
        f"VOLUME {volumes}",
    )
    report.expect(
        f'"-probe", "127.0.0.1:{GRPC_PORT}"' in health,
        "Dockerfile HEALTHCHECK probes the gRPC port",
        health,
    )
    report.expect(CONF_DIR in cmd, f"Dockerfile CMD reads {CONF_DIR}", cmd)
    report.expect(
        bool(users) and not users[-1].startswith(("0", "root")),
        "Dockerfile runs as a non-root user",
        f"USER {users}",
    )

    # docker-compose.yaml
    compose = yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text())
    service = compose["services"]["streamhub"]
    ports = {str(p) for p in service["ports"]}
    report.expect(f"{GRPC_PORT}:{GRPC_PORT}" in ports, "compose publishes 9000", f"{ports}")
    if metrics_port:
        report.expect(
            f"{metrics_port}:{metrics_port}" in ports, f"compose publishes {metrics_port}", f"{ports}"
        )
    stop = duration_seconds(service["stop_grace_period"])
    report.expect(
        stop > grace,
        "compose stop_grace_period > server.grpc.shutdown_grace",
        f"{stop}s <= {grace}s",
    )
    report.expect(
        any(str(v).endswith(f":{STATE_DIR}") for v in service["volumes"])
        and any(f":{CONF_DIR}/" in str(v) for v in service["volumes"]),
        "compose mounts config and state",
        f"{service['volumes']}",
    )

    # OpenTelemetry collector
    collector = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text())
    for name, pipeline in collector["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            missing = [c for c in pipeline.get(kind, []) if c not in (collector.get(kind) or {})]
            report.expect(
                not missing, f"otel-collector {name} pipeline {kind} are defined", f"{missing}"
            )
    otlp_grpc = collector["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    otel_service = compose["services"]["otel-collector"]
    report.expect(
        f"{port_of(otlp_grpc)}:{port_of(otlp_grpc)}" in {str(p) for p in otel_service["ports"]}
        and port_of(otlp_grpc) == 4317,
        "otel-collector receives OTLP/gRPC on 4317",
        otlp_grpc,
    )

    kubernetes_invariants(report, objects, grace, metrics_port)

    # systemd
    unit = unit_settings((DEPLOY / "systemd" / "streamhub.service").read_text())
    stop = duration_seconds(unit["TimeoutStopSec"][-1])
    report.expect(
        stop > grace, "systemd TimeoutStopSec > server.grpc.shutdown_grace", f"{stop}s <= {grace}s"
    )
    report.expect(
        unit.get("StateDirectory") == ["streamhub"] and f"-conf {CONF_DIR}" in unit["ExecStart"][-1],
        f"systemd state in {STATE_DIR}, config from {CONF_DIR}",
        f"{unit.get('StateDirectory')} {unit['ExecStart']}",
    )


def kubernetes_invariants(report, objects, grace, metrics_port):
    wanted = {"Deployment", "PersistentVolumeClaim", "Service", "ConfigMap"}
    if not wanted <= objects.keys():
        report.fail("k8s objects", f"found {sorted(objects)}, need {sorted(wanted)}")
        return
    deployment = objects["Deployment"]
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    prestop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    termination = pod["terminationGracePeriodSeconds"]
    report.expect(
        termination > prestop + grace,
        "k8s terminationGracePeriodSeconds > preStop + shutdown_grace",
        f"{termination}s <= {prestop}s + {grace}s",
    )
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    report.expect(named.get("grpc") == GRPC_PORT, "k8s containerPort grpc is 9000", f"{named}")
    if metrics_port:
        report.expect(
            named.get("metrics") == metrics_port,
            f"k8s containerPort metrics is {metrics_port}",
            f"{named}",
        )
        annotations = spec["template"]["metadata"].get("annotations", {})
        report.expect(
            annotations.get("prometheus.io/port") == str(metrics_port),
            "k8s prometheus.io/port annotation matches",
            f"{annotations}",
        )
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        port = container.get(probe, {}).get("grpc", {}).get("port")
        report.expect(port == GRPC_PORT, f"k8s {probe} is a gRPC probe on 9000", f"{port}")
    security = container["securityContext"]
    report.expect(
        pod["securityContext"].get("runAsNonRoot")
        and security.get("readOnlyRootFilesystem")
        and security.get("allowPrivilegeEscalation") is False
        and security.get("capabilities", {}).get("drop") == ["ALL"]
        and pod["securityContext"].get("seccompProfile", {}).get("type") == "RuntimeDefault",
        "k8s non-root, read-only root, no capabilities, seccomp RuntimeDefault",
        f"{security}",
    )
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    report.expect(
        "persistentVolumeClaim" in volumes.get(mounts.get(STATE_DIR), {})
        and "configMap" in volumes.get(mounts.get(CONF_DIR), {}),
        "k8s mounts the PVC on the state dir and the ConfigMap on the config dir",
        f"{mounts}",
    )
    pvc = objects["PersistentVolumeClaim"]
    report.expect(
        spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
        and pvc["spec"]["accessModes"] == ["ReadWriteOnce"],
        "k8s one replica, Recreate, ReadWriteOnce (a single SQLite writer)",
        f"replicas {spec['replicas']}, strategy {spec['strategy']}",
    )
    service_ports = {p["name"]: p for p in objects["Service"]["spec"]["ports"]}
    report.expect(
        service_ports.get("grpc", {}).get("port") == GRPC_PORT
        and service_ports["grpc"].get("targetPort") in ("grpc", GRPC_PORT),
        "k8s Service routes 9000 to the grpc port",
        f"{service_ports}",
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=pathlib.Path, required=True)
    parser.add_argument("--tools", type=pathlib.Path, default=ROOT / ".tools" / "bin")
    args = parser.parse_args()
    binary = args.binary.resolve()
    report = Report()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        lint(report, args.tools)
        objects = kubernetes(report, args.tools, scratch)
        systemd(report, binary, scratch)
        configuration(report, binary, objects)
        invariants(report, objects)
    print(f"deploy-check: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
