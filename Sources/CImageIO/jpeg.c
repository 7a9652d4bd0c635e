#include "aetrain_imageio.h"
#include <stdio.h>  /* before jpeglib.h, which uses FILE */
#include <jpeglib.h>
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

static void aet_jpeg_silence(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }

int aet_jpeg_read_rgb(const char *path, unsigned char **pixels, int *width, int *height,
                      char *error, size_t error_size) {
    *pixels = NULL;
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "cannot open: %s", strerror(errno));
        return -1;
    }
    struct jpeg_decompress_struct cinfo;
    struct aet_jpeg_error jerr;
    unsigned char *volatile out = NULL;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = aet_jpeg_error_exit;
    jerr.pub.emit_message = aet_jpeg_silence;  // warnings (e.g. extraneous bytes) are not errors
    jerr.message = error;
    jerr.message_size = error_size;
    if (setjmp(jerr.jump)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(file);
        free(out);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, file);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    const size_t stride = (size_t)cinfo.output_width * 3;
    out = malloc(stride * cinfo.output_height);
    if (!out) {
        snprintf(error, error_size, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        fclose(file);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    *width = (int)cinfo.output_width;
    *height = (int)cinfo.output_height;
    jpeg_destroy_decompress(&cinfo);
    fclose(file);
    *pixels = out;
    return 0;
}

void aet_image_free(void *pixels) { free(pixels); }
