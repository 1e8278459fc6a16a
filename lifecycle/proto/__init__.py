"""The fraud detector's gRPC interface (``fraud.proto``) and its generated Python stubs.

The stubs (``fraud_pb2.py``, ``fraud_pb2.pyi``, ``fraud_pb2_grpc.py``) are generated from
``fraud.proto`` by :func:`generate_stubs` and committed, so installing the kit needs no code
generator. After editing ``fraud.proto`` run ``python -m lifecycle.proto``; a unit test fails
while the committed stubs differ from a fresh generation.

Generation runs protoc from the project root (``-I <root>``) so the stubs import each other as
``lifecycle.proto.fraud_pb2`` and work inside the package.

Taught in notebooks/05_serving.ipynb.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lifecycle.errors import CommandError

PROTO = Path(__file__).with_name("fraud.proto")
STUBS = ("fraud_pb2.py", "fraud_pb2.pyi", "fraud_pb2_grpc.py")
_ROOT = PROTO.parent.parent.parent  # protoc runs from here, so the stubs import lifecycle.proto.fraud_pb2


def describe_proto(work_dir: str | Path) -> Any:
    """``fraud.proto`` as protoc reads it now: a ``FileDescriptorProto`` (compare it with
    ``fraud_pb2.DESCRIPTOR`` to see whether the committed stubs are stale).

    Raises:
        CommandError: protoc reported an error.
    """
    from google.protobuf import descriptor_pb2

    out = Path(work_dir) / "fraud.desc"
    out.parent.mkdir(parents=True, exist_ok=True)
    _protoc([f"--descriptor_set_out={out}"])
    described = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    for message in described.message_type:  # protoc adds json_name here but not in the Python stubs
        for field in message.field:
            field.ClearField("json_name")
    return described


def generate_stubs(out_dir: str | Path | None = None) -> list[Path]:
    """Run ``grpc_tools.protoc`` on ``fraud.proto``.

    Args:
        out_dir: folder that receives ``lifecycle/proto/<stub>`` (default: the project root, i.e.
            overwrite the committed stubs beside this file).

    Returns:
        The generated stub files.

    Raises:
        CommandError: protoc reported an error (its message is included).
    """
    out = Path(out_dir) if out_dir is not None else _ROOT
    (out / "lifecycle" / "proto").mkdir(parents=True, exist_ok=True)
    _protoc([f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}"])
    return [out / "lifecycle" / "proto" / name for name in STUBS]


def _protoc(outputs: list[str]) -> None:
    from grpc_tools import protoc

    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto shipped with grpc_tools
    args = ["grpc_tools.protoc", f"-I{_ROOT}", f"-I{include}", *outputs, PROTO.relative_to(_ROOT).as_posix()]
    status = protoc.main(args)
    if status != 0:
        raise CommandError(f"protoc failed with status {status} on {PROTO}; fix the .proto file "
                           "(protoc printed the reason above)", args, status)
