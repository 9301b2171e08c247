#!/usr/bin/env bash
# Gather, on a machine with the package registries, what the lent GPU machine lacks for
# benchmarks/gpu_check.sh: the wheels researchgym and the RL tasks need beyond that machine's
# image (its Python 3.12 has JAX with CUDA, flax, optax, typer, rich, numpy, but no pydantic,
# gymnasium or gymnax; see ../.library/device/KINDS.md) and bubblewrap's Debian package.
# Everything lands in .device-carry/ (ignored by git), a few MiB, within the 64 MiB carry limit.
#
#     bash benchmarks/gpu_carry.sh      # then: device run, carry [".device-carry"], the command
#                                       # in benchmarks/gpu_check.sh's header
set -euo pipefail
cd "$(dirname "$0")/.."
carry=.device-carry
grep -qx "/$carry/" .git/info/exclude 2>/dev/null || echo "/$carry/" >> .git/info/exclude
rm -rf "$carry" && mkdir -p "$carry/wheels"
# The versions the project is tested with here (.venv), Python 3.12 builds for x86-64 Linux.
wheels=(pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
        typing-extensions==4.16.0 gymnasium==1.3.0 farama-notifications==0.0.6 pyflakes==4.1.0
        gymnax==1.0.1)
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64; do
    platforms+=(--platform "$tag")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$carry/wheels" "${wheels[@]}"
(cd "$carry" && apt-get download -q bubblewrap >/dev/null)
du -sh "$carry"
ls "$carry" "$carry/wheels"
