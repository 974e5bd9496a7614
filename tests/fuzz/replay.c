/* SPDX-License-Identifier: MIT */
/*
 * A driver for the fuzz target where libFuzzer is not available: runs every
 * input file given, then a fixed number of deterministic mutations of each
 * (bit flips, truncations, 64-bit fields overwritten with extreme values),
 * so the test suite fuzzes with any compiler.
 *
 * Usage: fuzz-gguf-replay [-n MUTATIONS] FILE...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next(void)
{
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static uint8_t *read_all(const char *path, size_t *ret_size)
{
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        long n;

        if (!f)
                return NULL;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
                buf = malloc((size_t)n + 1);
                if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                        free(buf);
                        buf = NULL;
                }
                *ret_size = (size_t)n;
        }
        fclose(f);
        return buf;
}

static void mutate(uint8_t *buf, size_t *size)
{
        static const uint64_t extremes[] = { 0,
                                             1,
                                             0xff,
                                             0xffffffffull,
                                             0x7fffffffffffffffull,
                                             0xffffffffffffffffull,
                                             1ull << 32,
                                             1ull << 62 };
        size_t n = *size;

        if (n == 0)
                return;
        switch (next() % 4) {
        case 0: /* flip a few bits */
                for (int i = 0; i < 4; i++)
                        buf[next() % n] ^= (uint8_t)(1u << (next() % 8));
                break;
        case 1: /* truncate */
                *size = next() % n;
                break;
        case 2: /* an extreme 64-bit value somewhere */
                if (n >= 8) {
                        uint64_t v = extremes[next() % (sizeof(extremes) / sizeof(extremes[0]))];
                        memcpy(buf + next() % (n - 7), &v, 8);
                }
                break;
        default: /* an extreme 32-bit value somewhere */
                if (n >= 4) {
                        uint32_t v = (uint32_t)extremes[next() % 4];
                        memcpy(buf + next() % (n - 3), &v, 4);
                }
                break;
        }
}

int main(int argc, char **argv)
{
        long mutations = 0;
        int first = 1;

        if (argc > 2 && strcmp(argv[1], "-n") == 0) {
                mutations = strtol(argv[2], NULL, 10);
                first = 3;
        }
        for (int i = first; i < argc; i++) {
                size_t size = 0;
                uint8_t *orig = read_all(argv[i], &size);
                if (!orig) {
                        fprintf(stderr, "cannot read %s\n", argv[i]);
                        return 1;
                }
                LLVMFuzzerTestOneInput(orig, size);
                uint8_t *buf = malloc(size + 1);
                for (long k = 0; buf && k < mutations; k++) {
                        size_t n = size;
                        memcpy(buf, orig, size);
                        mutate(buf, &n);
                        LLVMFuzzerTestOneInput(buf, n);
                }
                free(buf);
                free(orig);
                printf("%s: 1 input + %ld mutations\n", argv[i], mutations);
        }
        return 0;
}
