/*
 * How fast can a 2-core machine of ours inflate the payloads the sidecar inflates? Erlang-made
 * compressed terms (131, 80, Size:32, zlib stream), each inflated whole and checked against its
 * declared size, by three native inflaters in one process: zlib (the baseline: what Erlang and
 * Node link), libdeflate and ISA-L's igzip. Prints CPU microseconds per payload (best of ROUNDS)
 * and each inflater's speed as a ratio to zlib's.
 *
 * Input: a file of records, each a 4-byte little-endian length and that many payload bytes
 * (bench/native-inflate/payloads.ts writes it). Built and run by bench/native-inflate/run.sh.
 */
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#define HEADER_BYTES 6
#define ROUNDS 5
#define PASSES 10

struct payloads {
  size_t count;
  const uint8_t **bytes;
  uint32_t *lengths;
  uint32_t *declared;
};

static double cpu_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static uint32_t read_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void die(const char *what, size_t index) {
  fprintf(stderr, "native-inflate: payload %zu: %s\n", index, what);
  exit(1);
}

static struct payloads read_payloads(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    perror(path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  uint8_t *data = malloc(size);
  if (fread(data, 1, size, f) != (size_t)size) die("short read of the input file", 0);
  fclose(f);
  struct payloads p = {0};
  for (long pos = 0; pos + 4 <= size; p.count++) pos += 4 + (data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16 | (uint32_t)data[pos + 3] << 24);
  p.bytes = malloc(p.count * sizeof *p.bytes);
  p.lengths = malloc(p.count * sizeof *p.lengths);
  p.declared = malloc(p.count * sizeof *p.declared);
  long pos = 0;
  for (size_t i = 0; i < p.count; i++) {
    uint32_t n = data[pos] | data[pos + 1] << 8 | data[pos + 2] << 16 | (uint32_t)data[pos + 3] << 24;
    p.bytes[i] = data + pos + 4;
    p.lengths[i] = n;
    if (n < HEADER_BYTES || p.bytes[i][0] != 131 || p.bytes[i][1] != 80) die("not a compressed term", i);
    p.declared[i] = read_be32(p.bytes[i] + 2);
    pos += 4 + n;
  }
  return p;
}

static uint8_t out[1 << 20];

/* Each inflater inflates payload i into out and returns the bytes it produced, or dies. */
typedef size_t (*inflater)(const struct payloads *p, size_t i);

static z_stream zlib_stream;
static size_t inflate_zlib(const struct payloads *p, size_t i) {
  inflateReset(&zlib_stream);
  zlib_stream.next_in = (uint8_t *)p->bytes[i] + HEADER_BYTES;
  zlib_stream.avail_in = p->lengths[i] - HEADER_BYTES;
  zlib_stream.next_out = out;
  zlib_stream.avail_out = p->declared[i] + 1;
  if (inflate(&zlib_stream, Z_FINISH) != Z_STREAM_END) die("zlib: not one whole stream", i);
  return zlib_stream.total_out;
}

static struct libdeflate_decompressor *libdeflate;
static size_t inflate_libdeflate(const struct payloads *p, size_t i) {
  size_t in_bytes, out_bytes;
  if (libdeflate_zlib_decompress_ex(libdeflate, p->bytes[i] + HEADER_BYTES, p->lengths[i] - HEADER_BYTES, out, p->declared[i] + 1, &in_bytes,
                                    &out_bytes) != LIBDEFLATE_SUCCESS)
    die("libdeflate: not one whole stream", i);
  return out_bytes;
}

static struct inflate_state isal_state;
static size_t inflate_isal(const struct payloads *p, size_t i) {
  isal_inflate_reset(&isal_state);
  isal_state.crc_flag = ISAL_ZLIB;
  isal_state.next_in = (uint8_t *)p->bytes[i] + HEADER_BYTES;
  isal_state.avail_in = p->lengths[i] - HEADER_BYTES;
  isal_state.next_out = out;
  isal_state.avail_out = p->declared[i] + 1;
  if (isal_inflate(&isal_state) != ISAL_DECOMP_OK || isal_state.block_state != ISAL_BLOCK_FINISH) die("ISA-L: not one whole stream", i);
  return isal_state.total_out;
}

/* CPU microseconds per payload, best of ROUNDS; every payload must inflate to its declared size. */
static double measure(const struct payloads *p, inflater f) {
  double best = 1e9;
  for (int round = 0; round < ROUNDS; round++) {
    double start = cpu_seconds();
    for (int pass = 0; pass < PASSES; pass++)
      for (size_t i = 0; i < p->count; i++)
        if (f(p, i) != p->declared[i]) die("inflated size differs from the declared size", i);
    double micros = (cpu_seconds() - start) * 1e6 / ((double)PASSES * p->count);
    if (micros < best) best = micros;
  }
  return best;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: native-inflate PAYLOADS-FILE\n");
    return 2;
  }
  struct payloads p = read_payloads(argv[1]);
  inflateInit(&zlib_stream);
  libdeflate = libdeflate_alloc_decompressor();
  isal_inflate_init(&isal_state);
  double zlib = measure(&p, inflate_zlib);
  double deflate = measure(&p, inflate_libdeflate);
  double isal = measure(&p, inflate_isal);
  printf("native, one thread, %zu payloads, CPU µs per payload (best of %d):\n", p.count, ROUNDS);
  printf("  zlib %s (baseline)       %6.2f\n", zlibVersion(), zlib);
  printf("  libdeflate                  %6.2f  (%.2fx zlib's speed)\n", deflate, zlib / deflate);
  printf("  ISA-L igzip                 %6.2f  (%.2fx zlib's speed)\n", isal, zlib / isal);
  return 0;
}
