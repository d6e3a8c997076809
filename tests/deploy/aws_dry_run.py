#!/usr/bin/env python3
"""deploy/aws: shellcheck, then every --dry-run command line checked against
the AWS CLI itself.

1. shellcheck is clean on every deploy/**/*.sh.
2. The scripts' dry runs (setup, DNS and incident sessions, session
   deletion, teardown) print `aws ...` lines; each one's service, operation
   and --parameter names must exist in the botocore service model the
   Debian awscli package ships (awscli/botocore/data/<service>/*/
   service-2.json; waiters from waiters-2.json), required members must be
   given, enum values must be valid, and --query must start at a member of
   the operation's output.
3. The same lines go through the real AWS CLI (awscli's own driver, in this
   process) up to the point where it would send the request: argument
   parsing, shorthand syntax (Key=...,Value=...) and botocore's parameter
   validation all run; the request is stopped in the before-send hook, so
   nothing leaves the machine.
4. The architecture the issue asks for is there (NLB, listener, health
   check, cross-zone, source-IP stickiness, filters, amazon-dns, sessions,
   tags, cleanup).
"""
import contextlib
import glob
import gzip
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys

SOURCE_DIR = os.environ.get("SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AWS_DIR = os.path.join(SOURCE_DIR, "deploy", "aws")
AWSCLI_DATA = "/usr/lib/python3/dist-packages/awscli/botocore/data"
GLOBAL_OPTIONS = {"--region", "--output", "--query", "--endpoint-url", "--profile"}

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def xform_name(name):
    """botocore's CamelCase -> hyphenated CLI name (the cases used here)."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1-\2", s)
    return s.lower()


def load_json(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def service_model(service, kind="service-2"):
    paths = sorted(glob.glob(os.path.join(AWSCLI_DATA, service, "*", kind + ".json*")))
    if not paths:
        sys.exit(f"no {kind} model for {service} under {AWSCLI_DATA}: install awscli (deploy/debian-packages.txt)")
    return load_json(paths[-1])


# --- 1. shellcheck ----------------------------------------------------------
scripts = sorted(glob.glob(os.path.join(SOURCE_DIR, "deploy", "**", "*.sh"), recursive=True))
if not shutil.which("shellcheck"):
    sys.exit("shellcheck is not installed (deploy/debian-packages.txt)")
r = subprocess.run(["shellcheck", "-x", *scripts], cwd=SOURCE_DIR, capture_output=True, text=True)
if r.returncode != 0:
    fail("shellcheck:\n" + r.stdout + r.stderr)
else:
    print(f"shellcheck clean: {len(scripts)} scripts")

# --- 2. dry runs ------------------------------------------------------------
RUNS = [
    ["mirror-setup.sh", "--dry-run", "--name", "prod-dns", "--region", "eu-west-1", "--vpc-id", "vpc-0abc",
     "--subnets", "subnet-0a,subnet-0b,subnet-0c", "--sensors", "i-0a,i-0b", "--ipv6"],
    ["mirror-sessions.sh", "--dry-run", "--name", "prod-dns", "--region", "eu-west-1",
     "--enis", "eni-0a,eni-0b,eni-0c", "--vni-base", "100"],
    ["mirror-sessions.sh", "--dry-run", "--name", "prod-dns", "--region", "eu-west-1", "--enis", "eni-0b",
     "--filter", "incident", "--session-number", "1", "--packet-length", "1500"],
    ["mirror-sessions.sh", "--dry-run", "--name", "prod-dns", "--region", "eu-west-1", "--enis", "eni-0b",
     "--filter", "incident", "--delete"],
    ["mirror-teardown.sh", "--dry-run", "--name", "prod-dns", "--region", "eu-west-1"],
]
commands = []  # (run index, argv without "aws")
env = dict(os.environ, PATH="/usr/bin:/bin")  # a dry run must not need aws
for i, run in enumerate(RUNS):
    r = subprocess.run(["bash", os.path.join(AWS_DIR, run[0]), *run[1:]], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        fail(f"{' '.join(run)}: exit {r.returncode}: {r.stderr}")
        continue
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    for line in lines:
        argv = shlex.split(line)
        if argv[0] != "aws":
            fail(f"{run[0]}: dry-run line is not an aws command: {line}")
            continue
        commands.append((i, argv[1:]))
    print(f"{run[0]} {' '.join(run[1:3])}...: {len(lines)} commands")
# a bad argument is refused before anything is printed
r = subprocess.run(["bash", os.path.join(AWS_DIR, "mirror-sessions.sh"), "--dry-run", "--enis", "eni-1",
                    "--session-number", "0"], capture_output=True, text=True, env=env)
if r.returncode == 0 or r.stdout:
    fail("mirror-sessions.sh accepted --session-number 0")

models = {"ec2": service_model("ec2"), "elbv2": service_model("elbv2")}
waiters = {"ec2": service_model("ec2", "waiters-2"), "elbv2": service_model("elbv2", "waiters-2")}


def split_params(args):
    """['--a', 'x', 'y', '--b', 'z'] -> [('--a', ['x', 'y']), ('--b', ['z'])]"""
    out = []
    for a in args:
        if a.startswith("--"):
            out.append((a, []))
        elif not out:
            raise ValueError(f"value before any parameter: {a}")
        else:
            out[-1][1].append(a)
    return out


def check_model(argv):
    service, op = argv[0], argv[1]
    rest = argv[2:]
    model = models.get(service)
    if model is None:
        return fail(f"unexpected service {service}: {argv}")
    if op == "wait":
        waiter_names = {xform_name(w): w for w in waiters[service]["waiters"]}
        if rest[0] not in waiter_names:
            return fail(f"{service} wait: no waiter {rest[0]}")
        op_name = waiters[service]["waiters"][waiter_names[rest[0]]]["operation"]
        rest = rest[1:]
    else:
        ops = {xform_name(o): o for o in model["operations"]}
        if op not in ops:
            return fail(f"{service}: no operation {op}")
        op_name = ops[op]
    operation = model["operations"][op_name]
    shapes = model["shapes"]
    members = shapes[operation["input"]["shape"]]["members"] if "input" in operation else {}
    by_cli = {"--" + xform_name(m): m for m in members}
    given = set()
    for param, values in split_params(rest):
        if param in GLOBAL_OPTIONS:
            continue
        negated = param.startswith("--no-") and ("--" + param[5:]) in by_cli
        member = by_cli.get("--" + param[5:] if negated else param)
        if member is None:
            fail(f"{service} {op}: {param} is not a parameter of {op_name} (has: {sorted(by_cli)})")
            continue
        given.add(member)
        shape = shapes[members[member]["shape"]]
        if shape["type"] == "boolean":
            if values:
                fail(f"{service} {op}: boolean {param} takes no value")
            continue
        if not values:
            fail(f"{service} {op}: {param} without a value")
        if shape["type"] != "list" and len(values) != 1:
            fail(f"{service} {op}: {param} takes one value, got {values}")
        element = shapes[shape["member"]["shape"]] if shape["type"] == "list" else shape
        if "enum" in element:
            for v in values:
                if v not in element["enum"]:
                    fail(f"{service} {op}: {param} {v} not in {element['enum']}")
    required = set(shapes[operation["input"]["shape"]].get("required", [])) if "input" in operation else set()
    for m in sorted(required - given):
        fail(f"{service} {op}: required --{xform_name(m)} missing")
    # --query starts at a member of the output
    if "--query" in rest and "output" in operation:
        q = rest[rest.index("--query") + 1]
        first = re.match(r"[A-Za-z]+", q).group(0)
        if first not in shapes[operation["output"]["shape"]]["members"]:
            fail(f"{service} {op}: --query {q}: {first} is not in {op_name}'s output")
    return op_name


op_names = []
for _, argv in commands:
    op_names.append(check_model(argv))
print(f"service model: {len(commands)} command lines checked")

# --- 3. the real AWS CLI, stopped before sending ------------------------------
os.environ.update(AWS_ACCESS_KEY_ID="AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY="not-a-secret",
                  AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true",
                  AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
try:
    sys.path.insert(0, "/usr/lib/python3/dist-packages")
    from awscli.clidriver import create_clidriver
except ImportError as e:
    sys.exit(f"awscli is not importable ({e}): install awscli (deploy/debian-packages.txt)")


class Stop(Exception):
    pass


driver = create_clidriver()
sent = []


def before_send(request, **kwargs):
    sent.append(request)
    raise Stop()


driver.session.register("before-send", before_send)
for _, argv in commands:
    sent.clear()
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(errors):
        rc = driver.main(list(argv))
    if not sent:  # the CLI's own message says what it refused
        fail(f"the AWS CLI refused (exit {rc}): aws {shlex.join(argv)}\n{errors.getvalue().strip()}")
print(f"AWS CLI: {len(commands)} command lines parsed and validated")

# --- 4. the architecture ------------------------------------------------------
def lines_of(run_index):
    return [a for i, a in commands if i == run_index]


def has(run_index, *words):
    return any(all(w in a for w in words) for a in lines_of(run_index))


def param(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


setup = lines_of(0)
checks = {
    "internal network load balancer": has(0, "create-load-balancer", "network", "internal"),
    "UDP 4789 listener": any(a[1] == "create-listener" and param(a, "--protocol") == "UDP" and param(a, "--port") == "4789" for a in setup),
    "UDP 4789 target group, TCP 4789 health check": any(
        a[1] == "create-target-group" and param(a, "--protocol") == "UDP" and param(a, "--port") == "4789"
        and param(a, "--health-check-protocol") == "TCP" and param(a, "--health-check-port") == "4789" for a in setup),
    "cross-zone load balancing on": has(0, "modify-load-balancer-attributes", "Key=load_balancing.cross_zone.enabled,Value=true"),
    "source-IP stickiness on the target group": any(
        a[1] == "modify-target-group-attributes" and "Key=stickiness.enabled,Value=true" in a
        and "Key=stickiness.type,Value=source_ip" in a for a in setup),
    "mirror target on the NLB": has(0, "create-traffic-mirror-target", "--network-load-balancer-arn"),
    "two filters": sum(a[1] == "create-traffic-mirror-filter" for a in setup) == 2,
    "amazon-dns on both filters": sum(a[1] == "modify-traffic-mirror-filter-network-services"
                                      and param(a, "--add-network-services") == "amazon-dns" for a in setup) == 2,
    "sessions with session numbers": sum(a[1] == "create-traffic-mirror-session" and param(a, "--session-number") == "10"
                                         for a in lines_of(1)) == 3,
    "incident session number 1": has(2, "create-traffic-mirror-session", "1", "--packet-length"),
    "incident session deleted": has(3, "delete-traffic-mirror-session"),
}
for proto, port in (("17", "53"), ("6", "53"), ("6", "8443")):
    checks[f"egress rule protocol {proto} port {port}"] = any(
        a[1] == "create-traffic-mirror-filter-rule" and param(a, "--traffic-direction") == "egress"
        and param(a, "--protocol") == proto and param(a, "--destination-port-range") == f"FromPort={port},ToPort={port}"
        and param(a, "--traffic-mirror-filter-id") == "tmf-0123456789abcdef0" for a in setup)
checks["incident filter accepts everything"] = sum(
    a[1] == "create-traffic-mirror-filter-rule" and "--protocol" not in a
    and param(a, "--traffic-mirror-filter-id") == "tmf-0fedcba9876543210" for a in setup) == 4
# every created resource tagged with the deployment
for i, a in commands:
    if a[1].startswith("create-") and a[1] != "create-traffic-mirror-filter-rule":  # rules take no tags
        if not any("exfilwatch:deployment" in w and "prod-dns" in w for w in a):
            fail(f"untagged: aws {shlex.join(a)}")
# teardown deletes every kind of resource created
created = {a[1][len("create-"):] for i, a in commands if a[1].startswith("create-")}
created -= {"traffic-mirror-filter-rule", "listener"}  # go with their filter / load balancer
deleted = {a[1][len("delete-"):] for i, a in commands if i == 4 and a[1].startswith("delete-")}
checks["teardown deletes " + ", ".join(sorted(created))] = created <= deleted
checks["teardown waits for the NLB before its target group"] = has(4, "wait", "load-balancers-deleted")
for name, ok in checks.items():
    if not ok:
        fail("architecture: " + name)
print(f"architecture: {len(checks)} checks")

if failures:
    print(f"{len(failures)} failure(s)")
    sys.exit(1)
print("ok")
