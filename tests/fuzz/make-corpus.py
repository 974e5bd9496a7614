#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the fuzz seed corpus: small valid GGUF files that reach every part of the
reader and the model loader (all value types and nested arrays; a tiny model of each
architecture with quantized tensors; a SentencePiece and a byte-level BPE vocabulary).
Run by hand from this directory; the output in corpus/ is committed."""
import random
import struct

ALIGN = 32
F32, F16, Q4_0, Q8_0 = 0, 1, 2, 8


class Writer:
    def __init__(self):
        self.kv = []
        self.tensors = []

    def s(self, text):
        b = text.encode()
        return struct.pack('<Q', len(b)) + b

    def add(self, key, vtype, payload):
        self.kv.append(self.s(key) + struct.pack('<I', vtype) + payload)

    def u32(self, key, v):
        self.add(key, 4, struct.pack('<I', v))

    def f32(self, key, v):
        self.add(key, 6, struct.pack('<f', v))

    def boolean(self, key, v):
        self.add(key, 7, struct.pack('<B', v))

    def string(self, key, v):
        self.add(key, 8, self.s(v))

    def strings(self, key, vals):
        self.add(key, 9, struct.pack('<IQ', 8, len(vals)) + b''.join(self.s(v) for v in vals))

    def scalars(self, key, etype, fmt, vals):
        self.add(key, 9, struct.pack('<IQ', etype, len(vals)) + b''.join(struct.pack('<' + fmt, v) for v in vals))

    def tensor(self, name, dims, ttype, data):
        self.tensors.append((name, dims, ttype, data))

    def bytes(self):
        out = struct.pack('<IIQQ', 0x46554747, 3, len(self.tensors), len(self.kv)) + b''.join(self.kv)
        off, blobs = 0, []
        for name, dims, ttype, data in self.tensors:
            out += self.s(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
            out += struct.pack('<IQ', ttype, off)
            blobs.append(data + b'\0' * (-len(data) % ALIGN))
            off += len(blobs[-1])
        out += b'\0' * (-len(out) % ALIGN)
        return out + b''.join(blobs)


rng = random.Random(7)


def data(ttype, n):
    if ttype == F32:
        return b''.join(struct.pack('<f', rng.uniform(-0.5, 0.5)) for _ in range(n))
    if ttype == F16:
        return b''.join(struct.pack('<e', rng.uniform(-0.5, 0.5)) for _ in range(n))
    if ttype == Q4_0:
        return b''.join(struct.pack('<e', 0.02) + bytes(rng.randrange(256) for _ in range(16)) for _ in range(n // 32))
    if ttype == Q8_0:
        return b''.join(struct.pack('<e', 0.004) + bytes(rng.randrange(256) for _ in range(32)) for _ in range(n // 32))
    raise ValueError(ttype)


def spm_vocab(w):
    toks = ['<unk>', '<s>', '</s>'] + ['<0x%02X>' % b for b in (0x0A, 0x2C, 0xC3, 0xA9)] + \
        ['\u2581', '\u2581H', '\u2581w', 'e', 'l', 'o', 'r', 'd', 'H', 'll', '\u2581He', '<|user|>']
    types = [2, 3, 3] + [6] * 4 + [1] * 11 + [4]
    w.string('tokenizer.ggml.model', 'llama')
    w.strings('tokenizer.ggml.tokens', toks)
    w.scalars('tokenizer.ggml.scores', 6, 'f', [-float(i) for i in range(len(toks))])
    w.scalars('tokenizer.ggml.token_type', 5, 'i', types)
    w.u32('tokenizer.ggml.bos_token_id', 1)
    w.u32('tokenizer.ggml.eos_token_id', 2)
    return len(toks)


def bpe_vocab(w):
    def b2u(b):
        keep = list(range(0x21, 0x7f)) + list(range(0xa1, 0xad)) + list(range(0xae, 0x100))
        if b in keep:
            return chr(b)
        return chr(256 + sorted(set(range(256)) - set(keep)).index(b))
    toks = [b2u(b) for b in range(256)] + ['\u0120w', 'He', 'll', '<|im_end|>']
    w.string('tokenizer.ggml.model', 'gpt2')
    w.string('tokenizer.ggml.pre', 'qwen2')
    w.strings('tokenizer.ggml.tokens', toks)
    w.scalars('tokenizer.ggml.token_type', 5, 'i', [1] * 259 + [3])
    w.strings('tokenizer.ggml.merges', ['\u0120 w', 'H e', 'l l'])
    w.u32('tokenizer.ggml.eos_token_id', 259)
    w.boolean('tokenizer.ggml.add_bos_token', False)
    return len(toks)


def model(arch, path):
    w = Writer()
    E, FF, H, HKV, D = 32, 32, 2, 1, 16
    w.string('general.architecture', arch)
    for k, v in (('embedding_length', E), ('block_count', 1), ('feed_forward_length', FF),
                 ('attention.head_count', H), ('attention.head_count_kv', HKV), ('context_length', 16)):
        w.u32('%s.%s' % (arch, k), v)
    w.f32(arch + '.attention.layer_norm_rms_epsilon', 1e-5)
    w.f32(arch + '.rope.freq_base', 10000.0)
    V = bpe_vocab(w) if arch == 'qwen2' else spm_vocab(w)
    w.tensor('token_embd.weight', [E, V], Q8_0, data(Q8_0, E * V))
    w.tensor('output_norm.weight', [E], F32, data(F32, E))
    if arch != 'gemma':
        w.tensor('output.weight', [E, V], F16, data(F16, E * V))
    w.tensor('blk.0.attn_norm.weight', [E], F32, data(F32, E))
    w.tensor('blk.0.ffn_norm.weight', [E], F32, data(F32, E))
    w.tensor('blk.0.attn_output.weight', [H * D, E], Q4_0, data(Q4_0, H * D * E))
    w.tensor('blk.0.ffn_down.weight', [FF, E], F16, data(F16, FF * E))
    if arch == 'phi3':
        w.tensor('blk.0.attn_qkv.weight', [E, (H + 2 * HKV) * D], Q8_0, data(Q8_0, E * (H + 2 * HKV) * D))
        w.tensor('blk.0.ffn_up.weight', [E, 2 * FF], Q4_0, data(Q4_0, E * 2 * FF))
    else:
        w.tensor('blk.0.attn_q.weight', [E, H * D], Q4_0, data(Q4_0, E * H * D))
        w.tensor('blk.0.attn_k.weight', [E, HKV * D], Q8_0, data(Q8_0, E * HKV * D))
        w.tensor('blk.0.attn_v.weight', [E, HKV * D], F32, data(F32, E * HKV * D))
        w.tensor('blk.0.ffn_gate.weight', [E, FF], Q4_0, data(Q4_0, E * FF))
        w.tensor('blk.0.ffn_up.weight', [E, FF], Q8_0, data(Q8_0, E * FF))
    if arch == 'qwen2':
        for n, d in (('q', H * D), ('k', HKV * D), ('v', HKV * D)):
            w.tensor('blk.0.attn_%s.bias' % n, [d], F32, data(F32, d))
    open(path, 'wb').write(w.bytes())


def all_types(path):
    w = Writer()
    for i, (t, fmt, v) in enumerate(((0, 'B', 200), (1, 'b', -100), (2, 'H', 60000), (3, 'h', -3),
                                     (4, 'I', 7), (5, 'i', -7), (6, 'f', 1.5), (7, 'B', 1),
                                     (10, 'Q', 1 << 40), (11, 'q', -5), (12, 'd', 0.25))):
        w.add('t.%d' % i, t, struct.pack('<' + fmt, v))
    w.string('t.str', 'h\u00e9llo')
    w.strings('t.strs', ['a', '', 'ccc'])
    w.add('t.nested', 9, struct.pack('<IQ', 9, 2) + struct.pack('<IQii', 5, 2, 7, 8) + struct.pack('<IQi', 5, 1, 9))
    w.u32('general.alignment', 32)
    w.tensor('w', [32, 2], Q8_0, data(Q8_0, 64))
    w.tensor('v', [4], F32, data(F32, 4))
    open(path, 'wb').write(w.bytes())


all_types('corpus/all-value-types.gguf')
for a in ('llama', 'phi3', 'gemma', 'qwen2'):
    model(a, 'corpus/tiny-%s.gguf' % a)
