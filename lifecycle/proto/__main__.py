"""Regenerate the committed gRPC stubs: ``python -m lifecycle.proto``."""

from lifecycle.proto import generate_stubs

for path in generate_stubs():
    print(f"wrote {path}")
