/* avatar.c - identicon PNG encoder (zlib for deflate and CRC). */
#include "avatar.h"

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { GRID = 5, CELL = 10, MARGIN = 10, SIDE = GRID * CELL + 2 * MARGIN };

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Append one PNG chunk (length, type, data, CRC over type and data). */
static size_t put_chunk(unsigned char *out, const char type[4], const unsigned char *data,
                        size_t len)
{
    put32(out, (uint32_t)len);
    memcpy(out + 4, type, 4);
    if (len) memcpy(out + 8, data, len);
    uLong crc = crc32(0L, out + 4, (uInt)(len + 4));
    put32(out + 8 + len, (uint32_t)crc);
    return len + 12;
}

/* HSL-ish colour from a hue byte: saturated, mid lightness. */
static void hue_to_rgb(unsigned hue, unsigned char rgb[3])
{
    unsigned h = hue * 6 * 256 / 256; /* 0..1535 */
    unsigned sector = h / 256, f = h % 256;
    unsigned hi = 200, lo = 60, up = lo + (hi - lo) * f / 255, down = hi - (hi - lo) * f / 255;
    unsigned r, g, b;
    switch (sector) {
    case 0:
        r = hi, g = up, b = lo;
        break;
    case 1:
        r = down, g = hi, b = lo;
        break;
    case 2:
        r = lo, g = hi, b = up;
        break;
    case 3:
        r = lo, g = down, b = hi;
        break;
    case 4:
        r = up, g = lo, b = hi;
        break;
    default:
        r = hi, g = lo, b = down;
        break;
    }
    rgb[0] = (unsigned char)r;
    rgb[1] = (unsigned char)g;
    rgb[2] = (unsigned char)b;
}

char *avatar_identicon(const char *name)
{
    unsigned char hash[16];
    crypto_generichash(hash, sizeof hash, (const unsigned char *)name, strlen(name), NULL, 0);

    /* Which cells are on: columns 0..2 from the hash bits, 3..4 mirrored. */
    int on[GRID][GRID];
    for (int row = 0; row < GRID; row++)
        for (int col = 0; col < 3; col++) {
            int bit = row * 3 + col;
            on[row][col] = on[row][GRID - 1 - col] = (hash[bit / 8] >> (bit % 8)) & 1;
        }

    /* Palette image, 8 bits per pixel: filter byte + SIDE indices per row. */
    size_t raw_len = (size_t)SIDE * (SIDE + 1);
    unsigned char *raw = malloc(raw_len);
    uLongf z_len = compressBound((uLong)raw_len);
    unsigned char *z = malloc(z_len);
    unsigned char *png = malloc(z_len + 128);
    char *url = NULL;
    if (!raw || !z || !png) goto out;
    for (int y = 0; y < SIDE; y++) {
        unsigned char *line = raw + (size_t)y * (SIDE + 1);
        line[0] = 0;
        for (int x = 0; x < SIDE; x++) {
            int cx = (x - MARGIN) / CELL, cy = (y - MARGIN) / CELL;
            bool inside = x >= MARGIN && y >= MARGIN && cx < GRID && cy < GRID;
            line[1 + x] = inside && on[cy][cx];
        }
    }
    if (compress2(z, &z_len, raw, (uLong)raw_len, 9) != Z_OK) goto out;

    size_t len = 0;
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    memcpy(png, signature, 8);
    len = 8;
    unsigned char ihdr[13];
    put32(ihdr, SIDE);
    put32(ihdr + 4, SIDE);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 3;  /* palette */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering */
    ihdr[12] = 0; /* no interlace */
    len += put_chunk(png + len, "IHDR", ihdr, sizeof ihdr);
    unsigned char plte[6] = {240, 240, 240};
    hue_to_rgb(hash[15], plte + 3);
    len += put_chunk(png + len, "PLTE", plte, sizeof plte);
    len += put_chunk(png + len, "IDAT", z, z_len);
    len += put_chunk(png + len, "IEND", NULL, 0);

    static const char prefix[] = "data:image/png;base64,";
    size_t b64 = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    url = malloc(sizeof prefix - 1 + b64);
    if (!url) goto out;
    memcpy(url, prefix, sizeof prefix - 1);
    sodium_bin2base64(url + sizeof prefix - 1, b64, png, len, sodium_base64_VARIANT_ORIGINAL);
out:
    free(raw);
    free(z);
    free(png);
    return url;
}
