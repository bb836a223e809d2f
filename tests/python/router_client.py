"""Calls a running triage sidecar with Python grpcio, a client this project
did not write, over its Unix socket and its TCP port.

Stubs are generated from proto/triage/v1/router.proto at start with
grpcio-tools, so the test exercises the published contract.

  router_client.py smoke --uds PATH --tcp HOST:PORT
  router_client.py prompts --uds PATH --tcp HOST:PORT FILE.jsonl

`prompts` sends the first turn (`turns[0]`, else `prompt`) of every line of
a JSONL file over both transports and checks every decision. Both modes end
with an "N passed, N failed" line and exit non-zero on any failure.
"""

import argparse
import importlib
import json
import pathlib
import sys
import tempfile

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parents[2]

# grpcio puts the socket path of a unix: target in the HTTP/2 :authority
# header. The server repairs it, so plain unix: targets work; the option
# below, which sets a host name instead, must keep working too.
UDS_AUTHORITY_OPTIONS = [("grpc.default_authority", "localhost")]


def load_stubs():
    out = pathlib.Path(tempfile.mkdtemp(prefix="triage-stubs-"))
    status = protoc.main([
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        str(ROOT / "proto/triage/v1/router.proto"),
    ])
    if status != 0:
        sys.exit(f"protoc failed with status {status}")
    sys.path.insert(0, str(out))
    messages = importlib.import_module("triage.v1.router_pb2")
    services = importlib.import_module("triage.v1.router_pb2_grpc")
    return messages, services


class Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, condition, what):
        if condition:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}", file=sys.stderr)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1


def channels(args):
    return [
        ("uds", grpc.insecure_channel(f"unix://{args.uds}")),
        ("uds-authority", grpc.insecure_channel(f"unix://{args.uds}", options=UDS_AUTHORITY_OPTIONS)),
        ("tcp", grpc.insecure_channel(args.tcp)),
    ]


def check_decision(tally, pb, decision, label):
    receipt = decision.receipt
    tally.check(decision.model != "", f"{label}: model is empty")
    tally.check(decision.provider != "", f"{label}: provider is empty")
    tally.check(decision.policy_version != "", f"{label}: policy_version is empty")
    tally.check(decision.HasField("receipt"), f"{label}: no receipt")
    tally.check(receipt.path != pb.PATH_UNSPECIFIED, f"{label}: receipt path unspecified")
    tally.check(receipt.path != pb.PATH_DEGRADED, f"{label}: decision degraded: {receipt.note}")
    tally.check(len(receipt.candidates) > 0, f"{label}: receipt lists no candidates")
    chosen = [c for c in receipt.candidates if c.model == decision.model]
    tally.check(len(chosen) == 1 and chosen[0].dropped == pb.DROP_REASON_NONE,
                f"{label}: chosen model missing from candidates or marked dropped")
    tally.check(receipt.decide_nanos > 0, f"{label}: decide_nanos is 0")
    tally.check(decision.estimated_cost_usd >= 0, f"{label}: negative cost")


def smoke(args):
    pb, services = load_stubs()
    tally = Tally()
    for name, channel in channels(args):
        router = services.RouterStub(channel)
        request = pb.DecideRequest(request_id=f"py-{name}", prompt="Write a limerick about a lighthouse keeper.")
        decision = router.Decide(request, timeout=5)
        check_decision(tally, pb, decision, f"{name} decide")
        tally.check(decision.request_id == f"py-{name}", f"{name}: request_id not echoed")

        pinned = router.Decide(pb.DecideRequest(prompt="hi", pinned_model=decision.model), timeout=5)
        tally.check(pinned.receipt.path == pb.PATH_PINNED, f"{name}: pinned path")

        try:
            router.Decide(pb.DecideRequest(prompt="hi", pinned_model="no-such-model"), timeout=5)
            tally.check(False, f"{name}: unknown pinned model accepted")
        except grpc.RpcError as err:
            tally.check(err.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{name}: status {err.code()}")
            tally.check("pinned_model" in err.details(), f"{name}: error does not name the field")

        info = router.GetPolicy(pb.GetPolicyRequest(), timeout=5)
        tally.check(info.model_count >= 1 and info.version != "", f"{name}: GetPolicy")

        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service="triage.v1.Router"), timeout=5)
        tally.check(status.status == health_pb2.HealthCheckResponse.SERVING, f"{name}: health")
    return tally.finish()


def first_turn(line):
    record = json.loads(line)
    turns = record.get("turns")
    return turns[0] if turns else record.get("prompt", "")


def prompts(args):
    pb, services = load_stubs()
    tally = Tally()
    texts = [first_turn(line) for line in args.file.read_text().splitlines() if line.strip()]
    for name, channel in channels(args):
        router = services.RouterStub(channel)
        for index, text in enumerate(texts):
            label = f"{name} prompt {index + 1}"
            try:
                decision = router.Decide(pb.DecideRequest(request_id=f"{name}-{index}", prompt=text), timeout=5)
            except grpc.RpcError as err:
                tally.check(False, f"{label}: {err.code()} {err.details()}")
                continue
            check_decision(tally, pb, decision, label)
    print(f"sent {len(texts)} prompts over each of uds, uds-authority and tcp", file=sys.stderr)
    return tally.finish()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("smoke", "prompts"):
        command = sub.add_parser(mode)
        command.add_argument("--uds", required=True, help="path of the gRPC Unix socket")
        command.add_argument("--tcp", required=True, help="HOST:PORT of the gRPC TCP listener")
    sub.choices["prompts"].add_argument("file", type=pathlib.Path, help="JSONL file of prompts")
    args = parser.parse_args()
    return smoke(args) if args.mode == "smoke" else prompts(args)


if __name__ == "__main__":
    sys.exit(main())
