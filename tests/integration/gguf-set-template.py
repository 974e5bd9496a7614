#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Copy a GGUF file with tokenizer.chat_template set to the text of TEMPLATE (replacing the one it
# has): the tests' way to give a model its own chat template.
# Usage: gguf-set-template.py IN.gguf TEMPLATE.jinja OUT.gguf
import struct
import sys

KEY = "tokenizer.chat_template"
# GGUF value types: sizes of the fixed-width ones
FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9


def read_string(buf, pos):
    (n,) = struct.unpack_from("<Q", buf, pos)
    return buf[pos + 8:pos + 8 + n].decode("utf-8"), pos + 8 + n


def skip_value(buf, pos, vtype):
    if vtype in FIXED:
        return pos + FIXED[vtype]
    if vtype == STRING:
        return read_string(buf, pos)[1]
    if vtype == ARRAY:
        etype, count = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        for _ in range(count):
            pos = skip_value(buf, pos, etype)
        return pos
    raise ValueError(f"unknown GGUF value type {vtype}")


def main():
    src, tmpl, dst = sys.argv[1:4]
    buf = open(src, "rb").read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", buf, 0)
    if magic != b"GGUF" or version < 2:
        sys.exit(f"{src}: not a GGUF file of version 2 or later")
    pos = 24
    kvs = []
    alignment = 32
    for _ in range(n_kv):
        start = pos
        key, pos = read_string(buf, pos)
        (vtype,) = struct.unpack_from("<I", buf, pos)
        pos = skip_value(buf, pos + 4, vtype)
        if key == "general.alignment":
            (alignment,) = struct.unpack_from("<I", buf, pos - 4)
        if key != KEY:
            kvs.append(buf[start:pos])
    infos_start = pos
    for _ in range(n_tensors):
        _, pos = read_string(buf, pos)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        pos += 4 + 8 * n_dims + 4 + 8
    infos = buf[infos_start:pos]
    data_start = (pos + alignment - 1) // alignment * alignment
    text = open(tmpl, "rb").read()
    key = KEY.encode()
    kvs.append(struct.pack("<Q", len(key)) + key + struct.pack("<IQ", STRING, len(text)) + text)
    out = struct.pack("<4sIQQ", b"GGUF", version, n_tensors, len(kvs)) + b"".join(kvs) + infos
    out += b"\0" * ((alignment - len(out) % alignment) % alignment)
    with open(dst, "wb") as f:
        f.write(out)
        f.write(buf[data_start:])


main()
