#include "aetrain_imageio.h"
#include <stdio.h>  /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
#include <jerror.h>  /* JWRN_JPEG_EOF */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

struct aet_jpeg_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;
    size_t message_size;
};

static void aet_jpeg_error_exit(j_common_ptr cinfo) {
    struct aet_jpeg_error *err = (struct aet_jpeg_error *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, buffer);
    snprintf(err->message, err->message_size, "%s", buffer);
    longjmp(err->jump, 1);
}

/* Warnings (e.g. extraneous bytes) are not errors, as in Pillow, except a premature end of
   the file: libjpeg would fill the rest with grey, Pillow refuses the file. */
static void aet_jpeg_emit_message(j_common_ptr cinfo, int level) {
    struct aet_jpeg_error *err = (struct aet_jpeg_error *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(err->message, err->message_size, "image file is truncated");
        longjmp(err->jump, 1);
    }
}

/* Pillow's 8-bit a·b/255, rounded (libImaging's MULDIV255). */
static inline int aet_muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* One row of CMYK as libjpeg stores Adobe's (inverted) samples, to RGB as Pillow converts
   it: its "CMYK;I" raw mode un-inverts, then `cmyk2rgb` gives R = (255 − K) − C·(255 − K)/255. */
static void aet_cmyk_row_to_rgb(unsigned char *rgb, const unsigned char *cmyk, size_t width) {
    for (size_t x = 0; x < width; x++, cmyk += 4, rgb += 3) {
        int nk = cmyk[3];  /* 255 − K, K = 255 − stored */
        for (int c = 0; c < 3; c++) {
            int v = nk - aet_muldiv255(255 - cmyk[c], nk);
            rgb[c] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

int aet_jpeg_read_rgb(const char *path, int max_side, unsigned char **pixels, int *width, int *height,
                      char *error, size_t error_size) {
    *pixels = NULL;
    *width = 0;
    *height = 0;
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct jpeg_decompress_struct cinfo;
    struct aet_jpeg_error jerr;
    unsigned char *volatile out = NULL;
    unsigned char *volatile cmyk = NULL;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = aet_jpeg_error_exit;
    jerr.pub.emit_message = aet_jpeg_emit_message;
    jerr.message = error;
    jerr.message_size = error_size;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(file);
        free(out);
        free(cmyk);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, file);
    jpeg_read_header(&cinfo, TRUE);
    /* The header's size, before anything is allocated for the pixels: a few bytes can claim
       65500×65500 (12 GB of RGB). */
    if ((int)cinfo.image_width > max_side || (int)cinfo.image_height > max_side) {
        *width = (int)cinfo.image_width;
        *height = (int)cinfo.image_height;
        jpeg_destroy_decompress(&cinfo);
        fclose(file);
        return -2;
    }
    /* libjpeg converts YCCK to CMYK but neither to RGB: those rows are converted here. */
    const int is_cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    cinfo.out_color_space = is_cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    /* At most max_side² × 4 bytes: no overflow in size_t. */
    const size_t stride = (size_t)cinfo.output_width * 3;
    out = malloc(stride * cinfo.output_height);
    if (is_cmyk) cmyk = malloc((size_t)cinfo.output_width * 4);
    if (!out || (is_cmyk && !cmyk)) {
        snprintf(error, error_size, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        fclose(file);
        free(out);
        free(cmyk);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + stride * cinfo.output_scanline;
        if (is_cmyk) {
            JSAMPROW raw = cmyk;
            jpeg_read_scanlines(&cinfo, &raw, 1);
            aet_cmyk_row_to_rgb(row, cmyk, cinfo.output_width);
        } else {
            jpeg_read_scanlines(&cinfo, &row, 1);
        }
    }
    jpeg_finish_decompress(&cinfo);
    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    fclose(file);
    free(cmyk);
    *pixels = out;
    return 0;
}

void aet_image_free(void *pixels) { free(pixels); }
