#include "aetrain_imageio.h"
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

struct aet_png_error { char *message; size_t message_size; };

static void aet_png_error_fn(png_structp png, png_const_charp msg) {
    struct aet_png_error *err = png_get_error_ptr(png);
    snprintf(err->message, err->message_size, "%s", msg);
    png_longjmp(png, 1);
}

static void aet_png_warning_fn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int aet_png_write(const char *path, const unsigned char *pixels, int width, int height, int channels,
                  char *error, size_t error_size) {
    if (channels != 1 && channels != 3) {
        snprintf(error, error_size, "unsupported channel count %d", channels);
        return -1;
    }
    FILE *file = fopen(path, "wb");
    if (!file) {
        snprintf(error, error_size, "cannot open for writing: %s", strerror(errno));
        return -1;
    }
    struct aet_png_error err = {error, error_size};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, aet_png_error_fn, aet_png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        snprintf(error, error_size, "cannot create PNG structures");
        png_destroy_write_struct(&png, &info);
        fclose(file);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(file);
        return -1;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) {
        png_write_row(png, pixels + (size_t)y * (size_t)width * (size_t)channels);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    if (fclose(file) != 0) {
        snprintf(error, error_size, "cannot finish writing: %s", strerror(errno));
        return -1;
    }
    return 0;
}
